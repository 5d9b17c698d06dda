using CosmosMigrations.Connection;
using CosmosMigrations.Distributed;
using CosmosMigrations.Errors;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>Undo-SchemaMigration of a move that is not completed: the followers are asked to stop,
/// the target is deleted when the move created it, then the change feed leases and the tracking
/// document. The source is never touched. Each part is idempotent, and the tracking document goes
/// last, so an undo cut short is finished by running it again. While it runs, the phase
/// <see cref="MovePhase.Undoing"/> keeps Start-ContainerMove from creating the target again.</summary>
internal sealed class MoveUndo
{
    private readonly MigrationConnection _connection;

    public MoveUndo(MigrationConnection connection)
    {
        _connection = connection;
    }

    public Action<string>? Log { get; set; }

    /// <summary>The move's tracking document and record, or null when <paramref name="tracked"/> is
    /// not a move. A completed move is refused: its target is where the application now writes.</summary>
    public static MoveRecord? Check(TrackingDocument tracked)
    {
        var record = MoveRecord.Of(tracked);
        if (record is not null && MovePhase.Of(tracked) == MovePhase.Completed)
        {
            throw Completed(tracked.Name, record);
        }

        return record;
    }

    public async Task<MigrationStatus> UndoAsync(string name, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var marked = await MarkAsync(name, cancellationToken).ConfigureAwait(false);
        var record = MoveRecord.Of(marked) ?? throw new MigrationException(MigrationErrorKind.MigrationNotFound, "MigrationNotFound",
            $"No move named '{name}' is tracked.", name, "Get-MigrationStatus lists the migrations and moves.");

        await MoveCompletion.StopFollowersAsync(_connection, name, leaseDuration, Log, cancellationToken).ConfigureAwait(false);
        // A follower that was stopping may have written its own phase since: marked again.
        marked = await MarkAsync(name, cancellationToken).ConfigureAwait(false) ?? marked;

        long? removedDocuments = null;
        if (record.CreatedTarget)
        {
            removedDocuments = await DeleteTargetAsync(record.Target, cancellationToken).ConfigureAwait(false);
        }

        var leases = await ProcessorLeases.DeleteForMigrationAsync(_connection, name, cancellationToken).ConfigureAwait(false);
        // Before the tracking document goes (the phase keeps any start away): an undo interrupted
        // here is run again, and removes what is left.
        var failures = await Failures.FailureStore.DeleteForMigrationAsync(_connection, name, long.MaxValue, cancellationToken).ConfigureAwait(false);
        leases += await MoveDeletes.ForgetAsync(_connection.Database.GetContainer(_connection.LeaseContainerName), name, cancellationToken).ConfigureAwait(false);
        // The reverse sync's anchor, written at the cut-over (MoveCompletion.AnchorReverseDeletesAsync).
        leases += await MoveDeletes.ForgetAsync(_connection.Database.GetContainer(_connection.LeaseContainerName), MoveCompletion.ReverseName(name), cancellationToken).ConfigureAwait(false);

        var last = await DeleteTrackingAsync(name, cancellationToken).ConfigureAwait(false) ?? marked!;

        var status = MigrationStatus.FromTracking(last);
        status.Status = TrackingStatus.Undone;
        status.Phase = TrackingStatus.Undone;
        status.Outcome = "Completed";
        status.Undoable = false;
        status.UndoBlocker = "it is undone";
        status.Message = (record.CreatedTarget
                ? removedDocuments is null
                    ? $"The target '{record.Target}' was gone already"
                    : $"Deleted the target '{record.Target}' ({removedDocuments} document(s) copied)"
                : $"Left the target '{record.Target}' in place: the move did not create it (it was empty); delete or empty it yourself")
            + $"; deleted the move's tracking state, {leases} change feed lease(s) and {failures} failure store entr(ies). '{record.Source}' is untouched.";
        Log?.Invoke(status.Message);
        return status;
    }

    /// <summary>Sets the phase <see cref="MovePhase.Undoing"/> (a completed move is refused);
    /// returns the document as it is then.</summary>
    private async Task<TrackingDocument?> MarkAsync(string name, CancellationToken cancellationToken) =>
        await TrackingStore.Of(_connection).UpdateAsync(name, document =>
        {
            if (document is null || MoveRecord.Of(document) is null)
            {
                return null;
            }

            Check(document);
            if (document.Phase == MovePhase.Undoing)
            {
                return null;
            }

            document.Phase = MovePhase.Undoing;
            return document;
        }, "move undo", cancellationToken).ConfigureAwait(false);

    /// <summary>Deletes the target; returns how many documents it held, or null when it was gone.</summary>
    private async Task<long?> DeleteTargetAsync(string target, CancellationToken cancellationToken)
    {
        var container = _connection.Database.GetContainer(target);
        try
        {
            long documents = 0;
            using (var count = container.GetItemQueryIterator<long>(new QueryDefinition("SELECT VALUE COUNT(1) FROM c")))
            {
                while (count.HasMoreResults)
                {
                    foreach (var value in await count.ReadNextAsync(cancellationToken).ConfigureAwait(false))
                    {
                        documents += value;
                    }
                }
            }

            await container.DeleteContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            Log?.Invoke($"Deleted the target '{target}' ({documents} document(s)).");
            return documents;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        catch (CosmosException ex)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.ServiceError, "TargetNotDeleted", $"Deleting the target '{target}' failed: {CosmosErrors.FirstLine(ex.Message)}", target,
                "Run Undo-SchemaMigration again: the move's state is kept until its target is gone.");
        }
    }

    /// <summary>Deletes the tracking document, conditioned on the ETag read (a last heartbeat of a
    /// stopping worker may change it in between: read again). Returns the last copy read.</summary>
    private async Task<TrackingDocument?> DeleteTrackingAsync(string name, CancellationToken cancellationToken)
    {
        TrackingDocument? last = null;
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var current = await TrackingStore.Of(_connection).GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (current is null)
            {
                return last;
            }

            last = current;
            if (await TrackingStore.Of(_connection).TryDeleteAsync(current, cancellationToken).ConfigureAwait(false))
            {
                return last;
            }
        }

        throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationChanged",
            $"The tracking document of '{name}' kept changing while it was being deleted (a worker still running it?).", name,
            "Check Get-MigrationStatus -Name … (its workers), then run Undo-SchemaMigration again.");
    }

    private static MigrationException Completed(string name, MoveRecord record) =>
        new(MigrationErrorKind.InvalidState, "MoveCompleted",
            $"The move '{name}' is completed: '{record.Target}' was verified equal to '{record.Source}' and is the container the application uses now. Undo-SchemaMigration removes a move's target only before completion.",
            name, $"Nothing was deleted. To go back, point the application at '{record.Source}' again (the move never changed it); delete '{record.Target}' yourself if it is no longer needed.");
}
