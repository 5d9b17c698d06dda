namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>One activity's progress bar: reports come from the Core's threads and are written on
/// the pipeline thread (<see cref="AsyncCmdlet.OnPipeline"/>). Its id follows from the activity's
/// name, so a command's bars for different migrations never share one.</summary>
internal sealed class ActivityProgress<T> : IProgress<T>
{
    private readonly Cmdlet _cmdlet;
    private readonly Action<Action> _onPipeline;
    private readonly Func<T, string> _status;
    private readonly Func<T, int?>? _percent;

    internal ActivityProgress(Cmdlet cmdlet, Action<Action> onPipeline, string activity, Func<T, string> status, Func<T, int?>? percent)
    {
        _cmdlet = cmdlet;
        _onPipeline = onPipeline;
        _status = status;
        _percent = percent;
        Activity = activity;
        Id = ActivityProgress.IdOf(activity);
    }

    public string Activity { get; }

    public int Id { get; }

    public void Report(T value) => _onPipeline(() =>
    {
        var record = new ProgressRecord(Id, Activity, _status(value));
        if (_percent?.Invoke(value) is { } percent)
        {
            record.PercentComplete = percent;
        }

        _cmdlet.WriteProgress(record);
    });

    /// <summary>Closes the bar (on the pipeline thread, once the work has returned).</summary>
    public void Complete() => _cmdlet.WriteProgress(new ProgressRecord(Id, Activity, "Done") { RecordType = ProgressRecordType.Completed });
}

internal static class ActivityProgress
{
    /// <summary>The progress id of an activity (or a migration's name): stable within the session, positive.</summary>
    public static int IdOf(string name) => Math.Abs(StringComparer.Ordinal.GetHashCode(name) % 100000) + 1;
}
