using CosmosMigrations.Errors;

namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    /// <summary>The mode of a tracking document whose run worker processes share.</summary>
    public const string DistributedMode = "distributed";

    /// <summary>The patch path of a worker's record.</summary>
    public static string WorkerPath(string worker) => "/workers/" + Documents.FieldPath.EscapePointer(worker);

    /// <summary>Workers of a distributed run that showed a sign of life within the lease duration.</summary>
    public static IReadOnlyList<string> LiveWorkers(TrackingDocument document, long now, TimeSpan leaseDuration) =>
        (document.Workers ?? new Dictionary<string, WorkerRecord>())
            .Where(w => w.Value.State == WorkerStates.Running && w.Value.Heartbeat + (long)leaseDuration.TotalMilliseconds > now)
            .Select(w => w.Key)
            .OrderBy(w => w, StringComparer.Ordinal)
            .ToList();

    private static MigrationException DistributedRunning(TrackingDocument existing, IReadOnlyList<string> workers) =>
        new(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
            $"Migration '{existing.Name}' is already running on {workers.Count} distributed worker(s): {string.Join(", ", workers)}.",
            existing.Name,
            "Join them with -Distributed, wait for them to finish (Get-MigrationStatus -Watch), or stop them all with Stop-SchemaMigration.");

    private static void BecomeDistributed(TrackingDocument document, StartRequest request, long now, bool newGeneration)
    {
        document.Mode = DistributedMode;
        if (newGeneration || document.Generation is null)
        {
            document.Generation = (document.Generation ?? 0) + 1;
            document.Pending = null;
        }

        document.Phase = null;
        // Patches write below these: their parents must exist.
        document.Pending ??= new Dictionary<string, PendingBatch>();
        document.Workers ??= new Dictionary<string, WorkerRecord>();
        document.Workers[request.Worker!] = NewWorker(request, now);
    }

    /// <summary>A run by one process (a single run, or an undo): no workers, no shared batches.</summary>
    private static void LeaveDistributed(TrackingDocument document)
    {
        document.Mode = null;
        document.Workers = null;
        document.Pending = null;
        document.Phase = null;
    }

    private static WorkerRecord NewWorker(StartRequest request, long now) =>
        new() { Host = request.Owner.Host, ProcessId = request.Owner.ProcessId, Heartbeat = now, State = WorkerStates.Running };
}
