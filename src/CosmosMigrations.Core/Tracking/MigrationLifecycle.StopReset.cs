using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    /// <summary>The migration to stop: it must be running.</summary>
    public async Task<TrackingDocument> GetStoppableAsync(string name, CancellationToken cancellationToken)
    {
        var current = await _store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        if (current.Status != TrackingStatus.Running)
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotRunning",
                $"Migration '{name}' is {current.Status}, not running: there is nothing to stop.", name);
        }

        return current;
    }

    /// <summary>Sets the stop flag that runners read after every page (and distributed workers at
    /// every beat); the run then ends cancelled, resumable. One atomic patch, applied only while
    /// the migration runs: busy workers patch the same document all the time. Returns the
    /// document as written (or as found, when it had stopped meanwhile).</summary>
    public async Task<TrackingDocument?> RequestStopAsync(string name, CancellationToken cancellationToken) =>
        await _store.TryPatchAsync(name, new[] { Microsoft.Azure.Cosmos.PatchOperation.Set("/stopRequested", true) },
            $"FROM c WHERE c.status = '{TrackingStatus.Running}'", cancellationToken).ConfigureAwait(false)
        ?? await _store.GetAsync(name, cancellationToken).ConfigureAwait(false);

    /// <summary>The migration to reset: it must have failed or been cancelled.</summary>
    public async Task<TrackingDocument> GetResettableAsync(string name, CancellationToken cancellationToken)
    {
        var current = await _store.GetRequiredAsync(name, cancellationToken).ConfigureAwait(false);
        if (MoveRecord.Of(current) is { } move)
        {
            // Deleting only its state would leave its target behind, refused by the next start (TargetNotEmpty).
            throw MoveRecord.IsAMove(name, move, "Reset-SchemaMigration");
        }

        if (current.Status is not (TrackingStatus.Failed or TrackingStatus.Cancelled))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNotResettable",
                $"Migration '{name}' is {current.Status}: only a failed or cancelled migration can be reset.", name,
                current.Status == TrackingStatus.Running
                    ? "Stop it first with Stop-SchemaMigration."
                    : "A completed migration runs again with Start-SchemaMigration -Force.");
        }

        return current;
    }

    /// <summary>Deletes the tracking state read by <see cref="GetResettableAsync"/>, unless it
    /// changed since (another runner started it).</summary>
    public async Task ResetAsync(TrackingDocument current, CancellationToken cancellationToken)
    {
        if (!await _store.TryDeleteAsync(current, cancellationToken).ConfigureAwait(false))
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationChanged",
                $"Migration '{current.Name}' changed while it was being reset (another runner started it?); nothing was deleted.", current.Name,
                "Check Get-MigrationStatus and try again.");
        }
    }
}
