using CosmosMigrations.Errors;

namespace CosmosMigrations;

/// <summary>Progress of a run, reported after every page.</summary>
internal sealed class MigrationProgress
{
    public string Name { get; set; } = "";

    public string Activity { get; set; } = "";

    public int Step { get; set; }

    public int StepCount { get; set; }

    public long Scanned { get; set; }

    public long Processed { get; set; }

    public long Failed { get; set; }

    /// <summary>The same documents by class (<see cref="FailureClass"/>).</summary>
    public FailedByClass FailedByClass { get; set; } = new(0, 0, 0);

    /// <summary>Documents this run is expected to read, when a count was possible.</summary>
    public long? EstimatedTotal { get; set; }

    public long ScannedThisRun { get; set; }

    public double RequestCharge { get; set; }

    public TimeSpan Elapsed { get; set; }

    public double DocumentsPerSecond => Elapsed.TotalSeconds > 0 ? ScannedThisRun / Elapsed.TotalSeconds : 0;

    public double RequestUnitsPerSecond { get; set; }

    /// <summary>Request units per document read in this run (reads and writes together).</summary>
    public double? RequestUnitsPerDocument { get; set; }

    /// <summary>The RU budget (-MaxRUPerSecond), when one is set.</summary>
    public double? Budget { get; set; }

    /// <summary>No total was counted (-NoEstimate): no percentage, no time remaining.</summary>
    public bool EstimateSkipped { get; set; }

    /// <summary>Set by a container step that measures its own progress (an index transformation).</summary>
    public int? StepPercent { get; set; }

    public int? PercentComplete => StepPercent ?? (EstimatedTotal is > 0 ? (int)Math.Min(100, 100 * ScannedThisRun / EstimatedTotal.Value) : null);

    /// <summary>Time remaining: what is left of the estimate at the measured rate, or, under a
    /// budget, at the rate the budget allows for the measured RU per document (the slower).</summary>
    public TimeSpan? Remaining
    {
        get
        {
            if (EstimatedTotal is not > 0 || ScannedThisRun >= EstimatedTotal || DocumentsPerSecond <= 0)
            {
                return null;
            }

            var rate = DocumentsPerSecond;
            if (Budget is > 0 && RequestUnitsPerDocument is > 0)
            {
                rate = Math.Min(rate, Budget.Value / RequestUnitsPerDocument.Value);
            }

            return TimeSpan.FromSeconds((EstimatedTotal.Value - ScannedThisRun) / rate);
        }
    }
}
