namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>A migration's progress bar: reports come from the Core's threads, at most five a second
/// are written, on the pipeline thread, and only the newest (a new step or activity shows at once).</summary>
internal sealed class MigrationProgressBar : IProgress<MigrationProgress>
{
    /// <summary>Page reports come dozens of times a second; a progress bar needs a few, and
    /// every record costs the host work (the benchmark's runs wrote ~40 a second).</summary>
    private static readonly long MinInterval = System.Diagnostics.Stopwatch.Frequency / 5;

    private readonly Cmdlet _cmdlet;
    private readonly Action<Action> _onPipeline;
    private readonly string _name;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private MigrationProgress? _latest;
    private string? _activity;
    private long _lastWrite = -MinInterval;

    internal MigrationProgressBar(Cmdlet cmdlet, Action<Action> onPipeline, string name)
    {
        _cmdlet = cmdlet;
        _onPipeline = onPipeline;
        _name = name;
    }

    public void Report(MigrationProgress value)
    {
        // A new step or activity shows at once; counts at most five times a second (the next
        // page's report, a few milliseconds later, carries them on).
        var now = _clock.ElapsedTicks;
        if (value.StepPercent is null && value.Activity == Volatile.Read(ref _activity) &&
            now - Interlocked.Read(ref _lastWrite) < MinInterval)
        {
            return;
        }

        Volatile.Write(ref _activity, value.Activity);
        Interlocked.Exchange(ref _lastWrite, now);
        // Only the newest report matters: queue one write, and let it take the latest value.
        if (System.Threading.Interlocked.Exchange(ref _latest, value) is not null)
        {
            return;
        }

        _onPipeline(() =>
        {
            var progress = System.Threading.Interlocked.Exchange(ref _latest, null);
            if (progress is not null)
            {
                _cmdlet.WriteProgress(ToRecord(progress));
            }
        });
    }

    /// <summary>Closes the bar (on the pipeline thread, once the run has returned).</summary>
    public void Complete() =>
        _cmdlet.WriteProgress(new ProgressRecord(ActivityProgress.IdOf(_name), $"Migration {_name}", "Done") { RecordType = ProgressRecordType.Completed });

    private ProgressRecord ToRecord(MigrationProgress p)
    {
        var invariant = CultureInfo.InvariantCulture;
        if (p.StepPercent is { } stepPercent)
        {
            return new ProgressRecord(ActivityProgress.IdOf(_name), $"Migration {_name} — step {p.Step}/{p.StepCount}", $"{p.Activity}: {stepPercent} %")
            {
                PercentComplete = Math.Max(0, Math.Min(100, stepPercent)),
            };
        }

        var of = p.EstimatedTotal is { } total ? $" of ~{total.ToString("N0", invariant)}" : p.EstimateSkipped ? " (no total: -NoEstimate)" : "";
        var perDocument = p.RequestUnitsPerDocument is { } ruPerDocument ? $", {ruPerDocument.ToString("0.##", invariant)} RU/doc" : "";
        var status = $"{p.ScannedThisRun.ToString("N0", invariant)}{of} read, {p.Processed.ToString("N0", invariant)} changed" +
                     (p.Failed > 0 ? $", {p.Failed} failed ({p.FailedByClass})" : "") +
                     $" · {p.RequestCharge.ToString("N0", invariant)} RU ({p.RequestUnitsPerSecond.ToString("N0", invariant)} RU/s{perDocument}) · {p.DocumentsPerSecond.ToString("N0", invariant)} docs/s";
        var record = new ProgressRecord(ActivityProgress.IdOf(_name), $"Migration {_name} — step {p.Step}/{p.StepCount}: {p.Activity}", status);
        if (p.PercentComplete is { } percent)
        {
            record.PercentComplete = percent;
        }

        if (p.Remaining is { } remaining)
        {
            record.SecondsRemaining = (int)Math.Min(int.MaxValue, remaining.TotalSeconds);
        }

        return record;
    }
}
