using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

/// <summary>The rules of a migration's life, in one place, for every command: a start (new →
/// create; running under a live lease → "already running"; expired lease → take over; failed or
/// cancelled → resume; completed → skip, or run again with -Force; undone → run again as new;
/// an unfinished undo → refused unless -Force), an undo (see <see cref="DecideUndo"/>), a stop
/// request (only while running), a reset (only when failed or cancelled) and the end of a run
/// (completed, or undone for an undo; cancelled or failed). Every write is conditioned on the
/// ETag of what was read.
/// One job a file: this one takes the lease (read, decide, write under the ETag); the start rules
/// (<c>.Start.cs</c>) and the undo rules (<c>.Undo.cs</c>) are pure decisions that leave the
/// document they read as read; the journal's bookkeeping (<c>.Journal.cs</c>), a distributed run's
/// workers (<c>.Workers.cs</c>), stop and reset (<c>.StopReset.cs</c>) and the end of a run
/// (<c>.End.cs</c>, which changes the document it is given: it runs inside a checkpoint's update).</summary>
internal sealed partial class MigrationLifecycle
{
    private const int MaxStartAttempts = 10;

    private readonly TrackingStore _store;

    public MigrationLifecycle(TrackingStore store)
    {
        _store = store;
    }

    /// <summary>Takes the lease (or finds nothing to do): reads, decides, writes conditioned on
    /// the ETag; when another runner wrote in between, reads and decides again.</summary>
    public async Task<StartDecision> StartAsync(StartRequest request, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxStartAttempts; attempt++)
        {
            var existing = await _store.GetAsync(request.Name, cancellationToken).ConfigureAwait(false);
            var decision = Decide(existing, request, Clock.NowMs());
            if (decision.Outcome == StartOutcome.Skipped)
            {
                return decision;
            }

            var written = existing is null
                ? await _store.TryCreateAsync(decision.Document, cancellationToken).ConfigureAwait(false)
                : decision.Outcome == StartOutcome.Joined
                    ? await JoinAsync(request, decision.Document, cancellationToken).ConfigureAwait(false)
                    : await _store.TryReplaceAsync(decision.Document, cancellationToken).ConfigureAwait(false);
            if (written)
            {
                return decision;
            }
        }

        throw Contended(request.Name);
    }

    /// <summary>Joining workers that are running: one atomic patch that adds this worker, applied
    /// only while the run is still distributed and running (the others patch the same document
    /// all the time, so a replace conditioned on the ETag would rarely go through).</summary>
    private async Task<bool> JoinAsync(StartRequest request, TrackingDocument document, CancellationToken cancellationToken)
    {
        var worker = document.Workers![request.Worker!];
        var joined = await _store.TryPatchAsync(request.Name,
            new[] { Microsoft.Azure.Cosmos.PatchOperation.Set(WorkerPath(request.Worker!), worker) },
            $"FROM c WHERE c.status = '{TrackingStatus.Running}' AND c.mode = '{DistributedMode}'", cancellationToken).ConfigureAwait(false);
        if (joined is not null)
        {
            joined.ETag ??= document.ETag;
        }

        return joined is not null;
    }

    /// <summary>Takes the lease for an undo (or finds nothing to do), as <see cref="StartAsync"/>
    /// does for a run: reads, decides (<see cref="DecideUndo"/>), writes conditioned on the ETag.</summary>
    public Task<StartDecision> StartUndoAsync(UndoRequest request, CancellationToken cancellationToken) =>
        TakeAsync(request.Name, async ct => await _store.GetRequiredAsync(request.Name, ct).ConfigureAwait(false),
            (existing, now) => DecideUndo(existing!, request, now), cancellationToken);

    /// <summary>Takes the lease on a decision made by <paramref name="decide"/> (-RetryFailures:
    /// <c>FailureRetry.Decide</c>, given what was read, or null, and the time) the same way: reads,
    /// decides, writes conditioned on the ETag; again when another runner wrote in between.</summary>
    public Task<StartDecision> StartRetryAsync(string name, Func<TrackingDocument?, long, StartDecision> decide, CancellationToken cancellationToken) =>
        TakeAsync(name, ct => _store.GetAsync(name, ct), decide, cancellationToken);

    private async Task<StartDecision> TakeAsync(string name, Func<CancellationToken, Task<TrackingDocument?>> read, Func<TrackingDocument?, long, StartDecision> decide,
        CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < MaxStartAttempts; attempt++)
        {
            var existing = await read(cancellationToken).ConfigureAwait(false);
            var decision = decide(existing, Clock.NowMs());
            if (decision.Outcome == StartOutcome.Skipped || await _store.TryReplaceAsync(decision.Document, cancellationToken).ConfigureAwait(false))
            {
                return decision;
            }
        }

        throw Contended(name);
    }

    /// <summary>Whether someone holds the migration now.</summary>
    public static bool HasLiveLease(TrackingDocument document, long now) =>
        document.Status == TrackingStatus.Running && document.Lease is not null && document.Lease.ExpiresAt > now;

    private static MigrationException AlreadyRunning(TrackingDocument existing, long now)
    {
        var seconds = Math.Ceiling((existing.Lease!.ExpiresAt - now) / 1000.0);
        return new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
            $"Migration '{existing.Name}' is already running{(existing.Undo is null ? "" : " (an undo)")}, owned by {existing.Lease.Owner} (lease expires in {seconds:0} s).",
            existing.Name,
            "Wait for it to finish (Get-MigrationStatus -Watch), or stop it with Stop-SchemaMigration. If its process died, the lease expires by itself and the next start resumes from the checkpoint.");
    }

    private static MigrationException Contended(string name) =>
        new(MigrationErrorKind.AlreadyRunning, "MigrationContended", $"Migration '{name}' is being started by another runner at the same time.", name, "Let the other runner go on.");

    /// <summary>What every start writes into its copy: running from now, no error or stop request
    /// left from before, one more run.</summary>
    private static void BeginRun(TrackingDocument document, long now)
    {
        document.Status = TrackingStatus.Running;
        document.StartedAt = now;
        document.Error = null;
        document.ErrorId = null;
        document.StopRequested = null;
        document.StopReason = null;
        document.Runs++;
        document.UpdatedAt = now;
    }

    /// <summary>A start by one process under its own lease (an undo, a retry of failures): <see
    /// cref="BeginRun"/>, no workers, not completed. Changes <paramref name="copy"/>, the decision's copy
    /// of what was read.</summary>
    internal static void BeginSingleRun(TrackingDocument copy, LeaseOwner owner, TimeSpan leaseDuration, long now)
    {
        BeginRun(copy, now);
        LeaveDistributed(copy);
        copy.CompletedAt = null;
        copy.Lease = NewLease(owner, leaseDuration, now);
    }

    private static Lease NewLease(LeaseOwner owner, TimeSpan duration, long now) =>
        new() { Owner = owner, ExpiresAt = now + (long)duration.TotalMilliseconds };
}
