using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Errors;

/// <summary>Retries a call that fails transiently (<see cref="CosmosErrors.IsTransient(System.Exception)"/>), with
/// exponential back-off that never waits less than the service's retry-after. For the calls that
/// do not go through the migration's request gate: bookkeeping of the tracking container and
/// read-only queries (status lists, conformance counts). The SDK itself retries a throttled
/// request only twice (so that sustained throttling reaches the engine's gate), so these need it.</summary>
public static class TransientRetry
{
    public const int MaxAttempts = 10;

    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (attempt < MaxAttempts && !cancellationToken.IsCancellationRequested && CosmosErrors.IsTransient(ex))
            {
                var backoff = Math.Min(5000, 50 * Math.Pow(2, attempt));
                var retryAfter = (ex as CosmosException)?.RetryAfter?.TotalMilliseconds ?? 0;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(backoff, retryAfter)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>For stream calls, which answer a failure instead of throwing: a transient status
    /// becomes an exception, so that <see cref="RunAsync{T}"/> retries it.</summary>
    public static ResponseMessage ThrowIfTransient(ResponseMessage response)
    {
        if (CosmosErrors.IsTransient(response.StatusCode))
        {
            var error = CosmosErrors.FromResponse(response);
            response.Dispose();
            throw error;
        }

        return response;
    }
}
