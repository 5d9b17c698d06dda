using System.Collections.Concurrent;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Base of every cmdlet that calls the Core. The Core runs on the thread pool; only the
/// pipeline thread may call Write* and ShouldProcess or run script blocks, so work for it is
/// queued here and run while the cmdlet waits. StopProcessing (Ctrl+C) cancels the Core's token.</summary>
public abstract class AsyncCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private BlockingCollection<Action>? _pipelineWork;
    private int _pipelineThreadId;

    protected CancellationToken CancelToken => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>Runs <paramref name="work"/> off the pipeline thread and serves its requests for
    /// the pipeline thread until it finishes; rethrows its exception. After Ctrl+C the pipeline
    /// refuses output (PipelineStoppedException), but the command still waits for the Core: it is
    /// finishing the pages under way and recording the stop, which makes the run resumable and its
    /// count exact (bounded by the Core's grace period).</summary>
    protected T RunAsync<T>(Func<CancellationToken, Task<T>> work)
    {
        using var queue = new BlockingCollection<Action>();
        _pipelineWork = queue;
        _pipelineThreadId = Environment.CurrentManagedThreadId;
        var task = Task.Run(() => work(_stopping.Token));
        _ = task.ContinueWith(_ => queue.Add(() => { }), TaskScheduler.Default);
        PipelineStoppedException? stopped = null;
        void Serve(Action action)
        {
            try
            {
                action();
            }
            catch (PipelineStoppedException ex) when (_stopping.IsCancellationRequested)
            {
                stopped ??= ex;
            }
        }

        try
        {
            while (!task.IsCompleted)
            {
                if (queue.TryTake(out var action, Timeout.Infinite))
                {
                    Serve(action);
                }
            }

            while (queue.TryTake(out var remaining))
            {
                Serve(remaining);
            }

            if (stopped is not null)
            {
                _ = task.Exception;
                throw stopped;
            }

            return task.GetAwaiter().GetResult();
        }
        finally
        {
            _pipelineWork = null;
        }
    }

    protected void RunAsync(Func<CancellationToken, Task> work) =>
        RunAsync<bool>(async ct =>
        {
            await work(ct).ConfigureAwait(false);
            return true;
        });

    /// <summary>A progress bar for <paramref name="activity"/>, fed from the Core's threads.</summary>
    private protected ActivityProgress<T> NewProgress<T>(string activity, Func<T, string> status, Func<T, int?>? percent = null) =>
        new(this, OnPipeline, activity, status, percent);

    /// <summary>Runs <paramref name="action"/> on the pipeline thread (now, if this is it).</summary>
    protected void OnPipeline(Action action)
    {
        var queue = _pipelineWork;
        if (queue is null || Environment.CurrentManagedThreadId == _pipelineThreadId)
        {
            action();
            return;
        }

        try
        {
            queue.Add(action);
        }
        catch (InvalidOperationException)
        {
            // The command has finished; late messages are dropped.
        }
    }

    /// <summary>Runs a function on the pipeline thread and awaits its result (script blocks).</summary>
    protected Task<T> InvokeOnPipelineAsync<T>(Func<T> function, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var registration = cancellationToken.Register(() => completion.TrySetCanceled());
        OnPipeline(() =>
        {
            try
            {
                if (!completion.Task.IsCompleted)
                {
                    completion.TrySetResult(function());
                }
            }
            catch (Exception ex)
            {
                completion.TrySetException(ex);
            }
            finally
            {
                registration.Dispose();
            }
        });
        return completion.Task;
    }

    protected void Verbose(string message) => OnPipeline(() => WriteVerbose(message));

    protected void Warning(string message) => OnPipeline(() => WriteWarning(message));

    public void Dispose()
    {
        _stopping.Dispose();
        GC.SuppressFinalize(this);
    }
}
