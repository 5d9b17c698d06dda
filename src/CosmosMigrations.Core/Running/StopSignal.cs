using System.Diagnostics;

namespace CosmosMigrations.Running;

/// <summary>Whether a run should stop, and why: a stop request found in the tracking document,
/// the end of the time slice (-MaxDuration) or of the page budget (-MaxBatches). Decided after a
/// page's checkpoint and honoured only between pages: scans start no new page, and pages already
/// in flight finish and checkpoint, so every change is counted.</summary>
internal sealed class StopSignal
{
    private readonly int? _maxBatches;
    private readonly TimeSpan? _maxDuration;
    private readonly Stopwatch _clock;
    private string? _reason;
    private int _pagesStarted;

    public StopSignal(RunOptions options, Stopwatch clock)
    {
        _maxBatches = options.MaxBatches;
        _maxDuration = options.MaxDuration;
        _clock = clock;
    }

    /// <summary>StopRequested, MaxDuration or MaxBatches; null while the run goes on.</summary>
    public string? Reason => Volatile.Read(ref _reason);

    public void Request(string reason) => Interlocked.CompareExchange(ref _reason, reason, null);

    /// <summary>After a checkpoint: a stop flag set on the tracking document, or a time slice used up.</summary>
    public void AfterCheckpoint(bool stopRequested)
    {
        if (stopRequested)
        {
            Request("StopRequested");
        }

        if (_maxDuration is { } maxDuration && _clock.Elapsed >= maxDuration)
        {
            Request("MaxDuration");
        }
    }

    /// <summary>Whether a scan may start another page (counts the page when it may).</summary>
    public bool MayStartPage()
    {
        if (Reason is not null)
        {
            return false;
        }

        if (_maxBatches is { } maxBatches && Interlocked.Increment(ref _pagesStarted) > maxBatches)
        {
            Request("MaxBatches");
            return false;
        }

        return true;
    }

    /// <summary>Ends the run (cancelled, resumable) when a stop was decided.</summary>
    public void ThrowIfStopped()
    {
        if (Reason is { } reason)
        {
            throw new StopRunException(reason);
        }
    }
}

/// <summary>A run stopped before the end, resumable from its checkpoint.</summary>
internal sealed class StopRunException : Exception
{
    public StopRunException(string reason)
        : base(reason)
    {
        Reason = reason;
    }

    public string Reason { get; }
}
