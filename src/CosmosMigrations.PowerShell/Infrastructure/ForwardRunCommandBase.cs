using CosmosMigrations.Running;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>What the commands that change documents forward (Start-SchemaMigration,
/// Invoke-Backfill) add to a run: its journal of before-images, which makes it undoable, and its
/// distribution over several worker processes.</summary>
public abstract class ForwardRunCommandBase : MigrationRunCommandBase
{
    [Parameter]
    public SwitchParameter Distributed { get; set; }

    [Parameter]
    public SwitchParameter Follow { get; set; }

    /// <summary>Keep no before-images: cheaper, but the migration can then never be undone.</summary>
    [Parameter]
    public SwitchParameter NoJournal { get; set; }

    /// <summary>How long before-images are kept (per-item TTL in the journal container).</summary>
    [Parameter]
    public TimeSpan JournalRetention { get; set; }

    /// <summary>The share of the documents seen that may fail (set aside in the failure store)
    /// before the run fails; alone, it sets no count limit.</summary>
    [Parameter]
    [ValidateRange(0.000001, 1.0)]
    public double MaxFailureRate { get; set; }

    /// <summary>Runs the migration over its failed documents only (the failure store).</summary>
    [Parameter]
    public SwitchParameter RetryFailures { get; set; }

    private protected override RunOptions Configure(RunOptions options)
    {
        options.Distributed = Distributed;
        options.Follow = Follow;
        options.Journal = !NoJournal;
        options.JournalRetention = JournalRetention > TimeSpan.Zero ? JournalRetention : null;
        SetFailureRate(options, MaxFailureRate, MyInvocation.BoundParameters.ContainsKey(nameof(MaxFailures)));
        options.RetryFailures = RetryFailures;
        return options;
    }

    /// <summary>-MaxFailureRate (0: not given): alone, it sets no count limit.</summary>
    internal static void SetFailureRate(RunOptions options, double rate, bool maxFailuresGiven)
    {
        if (rate > 0)
        {
            options.MaxFailureRate = rate;
            if (!maxFailuresGiven)
            {
                options.MaxFailures = int.MaxValue;
            }
        }
    }
}
