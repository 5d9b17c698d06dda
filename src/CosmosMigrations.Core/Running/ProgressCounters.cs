using System.Diagnostics;

namespace CosmosMigrations.Running;

/// <summary>What progress reports count during a run or a dry run: the step and what it does,
/// documents read in this call, the estimate, time. Totals across runs come from the caller.</summary>
internal sealed class ProgressCounters
{
    private long _scannedThisRun;

    public ProgressCounters(string name, int stepCount)
    {
        Name = name;
        StepCount = stepCount;
    }

    public string Name { get; }

    public int StepCount { get; }

    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    /// <summary>The step being run (0-based).</summary>
    public int Step { get; set; }

    public string Activity { get; set; } = "";

    /// <summary>Documents the current pass is expected to read (a server-side count), when known.</summary>
    public long? Estimate { get; set; }

    public long ScannedThisRun => Interlocked.Read(ref _scannedThisRun);

    public void AddScanned(long documents) => Interlocked.Add(ref _scannedThisRun, documents);

    /// <summary>Documents read per second in this run so far.</summary>
    public double DocumentsPerSecond => Clock.Elapsed.TotalSeconds > 0 ? System.Math.Round(ScannedThisRun / Clock.Elapsed.TotalSeconds, 1) : 0;

    /// <summary>The run's RU budget (-MaxRUPerSecond), which then paces the time remaining.</summary>
    public double? Budget { get; set; }

    /// <summary>The estimate was skipped on purpose (-NoEstimate).</summary>
    public bool EstimateSkipped { get; set; }

    /// <summary>A progress report with a migration's totals as its tracking document holds them
    /// (its failures by class too), in every engine; <paramref name="chargeThisRun"/> gives the RU rate.</summary>
    public MigrationProgress Snapshot(Tracking.TrackingDocument document, double requestCharge, double chargeThisRun)
    {
        var snapshot = Snapshot(document.Scanned, document.Processed, document.FailureCount ?? 0, requestCharge, chargeThisRun);
        snapshot.FailedByClass = new FailedByClass(document.Failed?.Transform ?? 0, document.Failed?.Refused ?? 0, document.Failed?.Exhausted ?? 0);
        return snapshot;
    }

    /// <summary>A progress report with the caller's totals; <paramref name="chargeThisRun"/> gives the RU rate.</summary>
    public MigrationProgress Snapshot(long scanned, long processed, long failed, double requestCharge, double chargeThisRun)
    {
        var elapsed = Clock.Elapsed;
        return new MigrationProgress
        {
            Name = Name,
            Activity = Activity,
            Step = Step + 1,
            StepCount = StepCount,
            Scanned = scanned,
            Processed = processed,
            Failed = failed,
            EstimatedTotal = Estimate,
            ScannedThisRun = ScannedThisRun,
            RequestCharge = requestCharge,
            RequestUnitsPerSecond = elapsed.TotalSeconds > 0 ? chargeThisRun / elapsed.TotalSeconds : 0,
            RequestUnitsPerDocument = ScannedThisRun > 0 ? chargeThisRun / ScannedThisRun : null,
            Budget = Budget,
            EstimateSkipped = EstimateSkipped,
            Elapsed = elapsed,
        };
    }
}
