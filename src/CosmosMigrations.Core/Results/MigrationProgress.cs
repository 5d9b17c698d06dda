using System;

namespace CosmosMigrations;

/// <summary>Progress of a run, reported after every page.</summary>
public sealed class MigrationProgress
{
    public string Name { get; set; } = "";

    public string Activity { get; set; } = "";

    public int Step { get; set; }

    public int StepCount { get; set; }

    public long Scanned { get; set; }

    public long Processed { get; set; }

    public long Failed { get; set; }

    /// <summary>Documents this run is expected to read, when a count was possible.</summary>
    public long? EstimatedTotal { get; set; }

    public long ScannedThisRun { get; set; }

    public double RequestCharge { get; set; }

    public TimeSpan Elapsed { get; set; }

    public double DocumentsPerSecond => Elapsed.TotalSeconds > 0 ? ScannedThisRun / Elapsed.TotalSeconds : 0;

    public double RequestUnitsPerSecond { get; set; }

    /// <summary>Set by a container step that measures its own progress (an index transformation).</summary>
    public int? StepPercent { get; set; }

    public int? PercentComplete => StepPercent ?? (EstimatedTotal is > 0 ? (int)Math.Min(100, 100 * ScannedThisRun / EstimatedTotal.Value) : null);

    public TimeSpan? Remaining => EstimatedTotal is > 0 && DocumentsPerSecond > 0 && ScannedThisRun < EstimatedTotal
        ? TimeSpan.FromSeconds((EstimatedTotal.Value - ScannedThisRun) / DocumentsPerSecond)
        : null;
}
