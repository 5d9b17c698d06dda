using System;
using System.Net;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Errors;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Running;

/// <summary>Sends a request through the gate and retries what is transient: throttling that
/// outlasted the SDK's own retries, 503 and 408 (which the SDK does not retry with a single
/// region), 410/449, and dropped connections. Back-off is exponential with jitter and honours the
/// service's retry-after.</summary>
public sealed class ResilientCalls
{
    private readonly RequestGate _gate;
    private readonly int _maxAttempts;
    private readonly Random _jitter = new();

    public ResilientCalls(RequestGate gate, int maxAttempts = 12)
    {
        _gate = gate;
        _maxAttempts = maxAttempts;
    }

    public RequestGate Gate => _gate;

    /// <summary>Transient failures seen and retried (for diagnostics and tests).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    private long _retries;

    /// <summary>Returns the final response: a success, or a non-transient failure for the caller
    /// to judge (404, 412, 400, …). Throws when transient failures outlast every attempt.</summary>
    public async Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string what, CancellationToken cancellationToken)
    {
        Exception? last = null;
        for (var attempt = 1; ; attempt++)
        {
            TimeSpan? retryAfter = null;
            using (var slot = await _gate.EnterAsync(cancellationToken).ConfigureAwait(false))
            {
                ResponseMessage? response = null;
                try
                {
                    response = await call(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested && CosmosErrors.IsTransient(ex))
                {
                    last = ex;
                    if (ex is CosmosException cosmos)
                    {
                        _gate.Record(cosmos.RequestCharge);
                        retryAfter = cosmos.RetryAfter;
                        if (cosmos.StatusCode == (HttpStatusCode)429)
                        {
                            _gate.OnThrottled(slot);
                        }
                    }
                }

                if (response is not null)
                {
                    _gate.Record(response.Headers.RequestCharge);
                    if (!CosmosErrors.IsTransient(response.StatusCode))
                    {
                        _gate.OnSuccess();
                        return response;
                    }

                    if (response.StatusCode == (HttpStatusCode)429)
                    {
                        _gate.OnThrottled(slot);
                    }

                    retryAfter = RetryAfter(response);
                    last = CosmosErrors.FromResponse(response);
                    response.Dispose();
                }
            }

            if (attempt >= _maxAttempts)
            {
                throw CosmosErrors.Wrap(last!, MigrationErrorKind.Transient, "TransientFailuresExhausted",
                    $"{what} still failed after {attempt} attempts.", what,
                    "The service is throttling or unavailable: lower -MaxDegreeOfParallelism or -MaxRUPerSecond, raise the container's throughput, and start again (the run resumes from its checkpoint).");
            }

            Interlocked.Increment(ref _retries);
            await Task.Delay(Backoff(attempt, retryAfter), cancellationToken).ConfigureAwait(false);
        }
    }

    private TimeSpan Backoff(int attempt, TimeSpan? retryAfter)
    {
        double jitter;
        lock (_jitter)
        {
            jitter = _jitter.NextDouble();
        }

        var exponential = Math.Min(8000, 50 * Math.Pow(2, attempt - 1)) * (0.5 + jitter);
        var floor = retryAfter?.TotalMilliseconds ?? 0;
        return TimeSpan.FromMilliseconds(Math.Max(exponential, floor));
    }

    private static TimeSpan? RetryAfter(ResponseMessage response) =>
        double.TryParse(response.Headers["x-ms-retry-after-ms"], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms)
            : null;

}
