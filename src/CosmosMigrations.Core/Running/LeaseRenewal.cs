using CosmosMigrations.Errors;

namespace CosmosMigrations.Running;

/// <summary>Keeps a lease alive while its holder works, for both engines: a single run's
/// migration lease (between checkpoints, when pages take long) and a distributed run's step
/// lease (while one worker runs a container step for all). Every third of the lease duration it
/// renews, unless the holder renewed it meanwhile (a checkpoint is a renewal). A failed renewal is
/// said and tried again at the next beat; whether the lease was lost is for the holder's next
/// write to find, under its ETag or filter.</summary>
internal static class LeaseRenewal
{
    /// <summary>Renews through <paramref name="renewAsync"/> until <paramref name="cancellationToken"/>
    /// is cancelled. <paramref name="lastRenewedMs"/> says when the holder last renewed the lease
    /// itself (epoch ms, on <paramref name="time"/>); null when only this loop renews it.</summary>
    public static async Task RunAsync(TimeProvider time, TimeSpan leaseDuration, Func<long>? lastRenewedMs, Func<CancellationToken, Task> renewAsync,
        Action<string>? log, CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromMilliseconds(leaseDuration.TotalMilliseconds / 3);
        while (true)
        {
            try
            {
                await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
                if (lastRenewedMs is not null && time.GetUtcNow().ToUnixTimeMilliseconds() - lastRenewedMs() < interval.TotalMilliseconds)
                {
                    continue;
                }

                await renewAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log?.Invoke($"Lease renewal failed: {CosmosErrors.FirstLine(ex.Message)}");
            }
        }
    }
}
