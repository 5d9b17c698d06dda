using CosmosMigrations.Errors;

namespace CosmosMigrations.Running;

/// <summary>How a run goes: batch size, concurrency, budgets, time slices, tolerance.</summary>
internal sealed class RunOptions
{
    public int BatchSize { get; set; } = 100;

    /// <summary>The run's clock: lease renewal, heartbeats, the distributed run's beats and the
    /// judgement of which workers are alive read it (tests move a fake one instead of sleeping).</summary>
    internal TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Where the adaptive concurrency starts (the controller raises it while that pays, and
    /// lowers it on 429s and rising latency). 24: at 5 ms from the server a run that started at 16
    /// spent its first second climbing to the 54–64 it settled on, while one that started at 32
    /// never came down to the 24–36 that loopback rewards (more in flight there only costs CPU).</summary>
    public const int StartingConcurrency = 24;

    /// <summary>The most requests in flight at once: a cap, not the setting; within it the run
    /// finds the concurrency the account and the network reward.</summary>
    public int MaxDegreeOfParallelism { get; set; } = 64;

    /// <summary>RU/s the migration may consume (measured from response charges); null = no limit.</summary>
    public double? MaxRUPerSecond { get; set; }

    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Stop (resumable) once this much time has passed: a runbook's time slice.</summary>
    public TimeSpan? MaxDuration { get; set; }

    /// <summary>Stop (resumable) after this many pages in this run.</summary>
    public int? MaxBatches { get; set; }

    /// <summary>Documents that may fail (recorded and skipped) before the run fails.</summary>
    public int MaxFailures { get; set; }

    /// <summary>The share of the documents seen that may fail (recorded and skipped) before the run
    /// fails (null: no share limit). A run given only a rate has no count limit.</summary>
    public double? MaxFailureRate { get; set; }

    /// <summary>Run the migration's steps over its failed documents only (the failure store), by
    /// point reads, instead of scanning.</summary>
    public bool RetryFailures { get; set; }

    /// <summary>Skip the COUNT at the start of each pass (it costs RU on a huge container):
    /// progress then has no percentage and no time remaining.</summary>
    public bool NoEstimate { get; set; }

    /// <summary>Join every process that runs the migration with this switch in one run, shared
    /// through the change feed processor (leases beside the tracking container).</summary>
    public bool Distributed { get; set; }

    /// <summary>With <see cref="Distributed"/>: once every document has been seen, keep converting
    /// what the application writes until Stop-SchemaMigration.</summary>
    public bool Follow { get; set; }

    /// <summary>Where a distributed pass's change feed begins (null: its beginning). A move's
    /// reverse sync reads only what was written after its cut-over.</summary>
    public DateTime? FeedStartTime { get; set; }

    /// <summary>Where a distributed pass's writes go (null: in place; a move: its target).</summary>
    public Steps.IPassWrites? Writes { get; set; }

    /// <summary>Run a completed migration again; for an undo, restore documents changed since the
    /// migration too.</summary>
    public bool Force { get; set; }

    /// <summary>Keep a before-image of every change, so that the migration can be undone (false:
    /// -NoJournal).</summary>
    public bool Journal { get; set; } = true;

    /// <summary>How long before-images are kept (per-item TTL); null keeps them until the
    /// migration is undone.</summary>
    public TimeSpan? JournalRetention { get; set; }

    /// <summary>A completed migration whose definition changed is an error, not a warning.</summary>
    public bool Strict { get; set; }

    public int SampleCount { get; set; } = 3;

    /// <summary>At most this many failures are kept in the tracking document.</summary>
    public int FailureListCap { get; set; } = 50;

    /// <summary>Catch-up scans after the first scan of a pass: re-scans for documents written behind
    /// the cursor while it ran, as long as a scan still changed something.</summary>
    public int MaxCatchUpScans { get; set; } = 3;

    public void Validate()
    {
        Check(BatchSize is >= 1 and <= 10000, "BatchSize", "between 1 and 10000");
        Check(MaxDegreeOfParallelism is >= 1 and <= 256, "MaxDegreeOfParallelism", "between 1 and 256");
        Check(MaxRUPerSecond is null or >= 1, "MaxRUPerSecond", "at least 1");
        Check(LeaseDuration >= TimeSpan.FromSeconds(5) && LeaseDuration <= TimeSpan.FromHours(1), "LeaseDuration", "between 5 seconds and 1 hour");
        Check(MaxDuration is null || MaxDuration > TimeSpan.Zero, "MaxDuration", "positive");
        Check(MaxBatches is null or >= 1, "MaxBatches", "at least 1");
        Check(MaxFailures >= 0, "MaxFailures", "0 or more");
        Check(MaxFailureRate is null or (> 0 and <= 1), "MaxFailureRate", "above 0 and at most 1");
        Check(JournalRetention is null || (JournalRetention >= TimeSpan.FromSeconds(1) && JournalRetention.Value.TotalSeconds <= int.MaxValue), "JournalRetention", "at least one second");
        if (RetryFailures && Distributed)
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "RetryNotDistributed",
                "-RetryFailures reads the failed documents back one by one in this process: it cannot be distributed.", "RetryFailures",
                "Leave -Distributed (and -Follow) out of the retry.");
        }

        if (Follow && !Distributed)
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "FollowNeedsDistributed",
                "-Follow keeps a distributed run converting the application's writes: it needs -Distributed.", "Follow",
                "Add -Distributed (one worker is enough), or leave -Follow out.");
        }
    }

    private static void Check(bool ok, string name, string rule)
    {
        if (!ok)
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidRunOption", $"{name} must be {rule}.", name);
        }
    }
}
