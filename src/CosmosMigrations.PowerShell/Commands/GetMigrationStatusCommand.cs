using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Moving;
using CosmosMigrations.PowerShell.Infrastructure;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Commands;

/// <summary>Reads tracking documents; with -Path also lists the files' migrations not yet run as
/// pending; with -Watch shows progress until the selected migrations stop running.</summary>
[Cmdlet(VerbsCommon.Get, "MigrationStatus")]
[OutputType(typeof(MigrationStatus))]
public sealed class GetMigrationStatusCommand : ConnectedCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MigrationNameCompleter))]
    public string[] Name { get; set; } = { "*" };

    [Parameter]
    [ValidateSet("running", "completed", "completedWithFailures", "failed", "cancelled", "undone", "pending", "copied", IgnoreCase = true)]
    public string[]? Status { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Path { get; set; }

    [Parameter]
    public SwitchParameter Watch { get; set; }

    [Parameter]
    [ValidateRange(1, 3600)]
    public int IntervalSec { get; set; } = 2;

    protected override void ProcessRecord(MigrationConnection connection)
    {
        var statuses = Read(connection);
        if (Watch)
        {
            statuses = WatchUntilDone(connection, statuses);
        }

        foreach (var status in statuses)
        {
            WriteObject(status);
        }
    }

    private List<MigrationStatus> Read(MigrationConnection connection)
    {
        var patterns = Name.Select(n => new WildcardPattern(n, WildcardOptions.IgnoreCase)).ToList();
        var tracked = connection.TrackingContainerExists ? RunAsync(ct => ListAsync(TrackingStore.Of(connection), ct)) : new List<TrackingDocument>();
        var byName = tracked.ToDictionary(d => d.Name, StringComparer.Ordinal);
        var result = new List<MigrationStatus>();
        if (Path is not null)
        {
            // The files' order first, each with its state (pending when never run).
            var errors = new List<ErrorRecord>();
            var files = MigrationFiles.Expand(this, Path, errors);
            foreach (var file in files)
            {
                try
                {
                    var definition = MigrationFiles.ReadStatically(file);
                    byName.TryGetValue(definition.Name, out var document);
                    result.Add(MigrationStatus.ForFile(definition, document, file));
                    byName.Remove(definition.Name);
                }
                catch (MigrationException ex)
                {
                    WriteError(ErrorRecords.From(ex));
                }
            }

            errors.ForEach(WriteError);
        }
        else
        {
            foreach (var document in byName.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
            {
                var status = MigrationStatus.FromTracking(document);
                if (patterns.Any(p => p.IsMatch(status.Name)))
                {
                    // A move's lag is read from its leases now (nothing for other migrations).
                    RunAsync(ct => MoveLiveStatus.AddAsync(connection, status, document, ct));
                }

                result.Add(status);
            }
        }

        return result.Where(s => patterns.Any(p => p.IsMatch(s.Name)))
            .Where(s => Status is null || Status.Contains(s.Status, StringComparer.OrdinalIgnoreCase))
            .ToList();
    }

    private static async Task<List<TrackingDocument>> ListAsync(TrackingStore store, System.Threading.CancellationToken ct)
    {
        var list = new List<TrackingDocument>();
        await foreach (var document in store.ListAsync(ct).ConfigureAwait(false))
        {
            list.Add(document);
        }

        return list;
    }

    private List<MigrationStatus> WatchUntilDone(MigrationConnection connection, List<MigrationStatus> statuses)
    {
        var watched = statuses.Select(s => s.Name).ToList();
        while (true)
        {
            var running = statuses.Where(s => s.Status == TrackingStatus.Running).ToList();
            foreach (var status in running)
            {
                var record = new ProgressRecord(ActivityProgress.IdOf(status.Name), $"Migration {status.Name} ({status.Owner ?? "lease expired"})",
                    $"{status.Scanned:N0} read, {status.Processed:N0} changed, {status.RequestCharge:N0} RU" +
                    (status.Lag is { } lag ? $" · lag {lag:N0}{(status.DocumentsPerSecond is { } rate ? $", {rate:N0} docs/s" : "")}" : ""));
                if (status.PercentComplete is { } percent)
                {
                    record.PercentComplete = (int)percent;
                }

                if (status.Remaining is { } remaining)
                {
                    record.SecondsRemaining = (int)Math.Min(int.MaxValue, remaining.TotalSeconds);
                }

                WriteProgress(record);
            }

            if (running.Count == 0)
            {
                return statuses;
            }

            RunAsync(ct => Task.Delay(TimeSpan.FromSeconds(IntervalSec), ct));
            var fresh = Read(connection).ToDictionary(s => s.Name, StringComparer.Ordinal);
            foreach (var finished in statuses.Where(s => s.Status == TrackingStatus.Running && fresh.TryGetValue(s.Name, out var f) && f.Status != TrackingStatus.Running))
            {
                WriteProgress(new ProgressRecord(ActivityProgress.IdOf(finished.Name), $"Migration {finished.Name}", "Done") { RecordType = ProgressRecordType.Completed });
            }

            statuses = watched.Where(fresh.ContainsKey).Select(n => fresh[n]).ToList();
        }
    }
}
