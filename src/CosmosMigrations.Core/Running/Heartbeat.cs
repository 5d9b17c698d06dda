using System;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Errors;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>Renews the lease between checkpoints when pages take long (a tight RU budget): every
/// third of the lease duration, unless a checkpoint renewed it meanwhile.</summary>
internal static class Heartbeat
{
    public static async Task RunAsync(LeasedCheckpoint checkpoint, TimeSpan leaseDuration, Action<string>? log, CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromMilliseconds(leaseDuration.TotalMilliseconds / 3);
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            if (Clock.NowMs() - checkpoint.LastWriteMs < interval.TotalMilliseconds)
            {
                continue;
            }

            try
            {
                await checkpoint.RenewAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A failed renewal is retried at the next beat or checkpoint, which also notices a
                // lost lease.
                log?.Invoke($"Lease renewal failed: {CosmosErrors.FirstLine(ex.Message)}");
            }
        }
    }
}
