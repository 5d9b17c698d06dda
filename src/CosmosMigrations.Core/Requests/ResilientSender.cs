using System.Diagnostics;
using System.IO;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Requests;

/// <summary>Sends requests, through a <see cref="RequestGate"/> when it has one, and retries what is
/// transient: throttling that outlasted the SDK's own two retries, 503 and 408 (which the SDK does
/// not retry with a single region), 410/449, and dropped connections, waiting
/// <see cref="Backoff"/> between attempts. When every attempt failed, the error is a
/// <see cref="MigrationException"/>: no raw SDK exception reaches a caller.</summary>
internal sealed class ResilientSender
{
    public const int MaxAttempts = 12;

    private static readonly double TicksPerTimestamp = (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency;

    private long _retries;

    public ResilientSender(RequestGate? gate = null)
    {
        Gate = gate;
    }

    /// <summary>Without a gate: for bookkeeping and operators' read-only queries, which are few and
    /// small, so admission and RU budgets do not apply.</summary>
    public static ResilientSender Ungated { get; } = new();

    public RequestGate? Gate { get; }

    /// <summary>Transient failures seen and retried (for diagnostics and tests).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>A stream call: returns the final response, a success or a failure that is not
    /// transient (404, 412, 400, …) for the caller to judge.</summary>
    public Task<ResponseMessage> SendAsync(Func<CancellationToken, Task<ResponseMessage>> call, string what, CancellationToken cancellationToken, GiveUp? giveUp = null) =>
        RunAsync(async ct =>
        {
            var response = await call(ct).ConfigureAwait(false);
            if (CosmosErrors.IsTransient(response.StatusCode))
            {
                var failure = new TransientResponseException(CosmosErrors.FromResponse(response), RetryAfter(response));
                response.Dispose();
                throw failure;
            }

            Gate?.Record(response.Headers.RequestCharge);
            return response;
        }, giveUp ?? new GiveUp("TransientFailuresExhausted", $"{what} still failed after {MaxAttempts} attempts.", what,
            "The service is throttling or unavailable: lower -MaxDegreeOfParallelism or -MaxRUPerSecond, raise the container's throughput, and start again (the run resumes from its checkpoint)."),
            cancellationToken);

    /// <summary>A write with a body: <paramref name="body"/> makes a fresh stream for every attempt
    /// (the SDK reads, and may dispose, the one it sent, so a retried request needs another), and
    /// it is disposed when the attempt ends.</summary>
    public Task<ResponseMessage> SendAsync(Func<Stream> body, Func<Stream, CancellationToken, Task<ResponseMessage>> call, string what, CancellationToken cancellationToken,
        GiveUp? giveUp = null) =>
        SendAsync(async ct =>
        {
            using var stream = body();
            return await call(stream, ct).ConfigureAwait(false);
        }, what, cancellationToken, giveUp);

    /// <summary>Any call: a transient exception is retried; after the last attempt
    /// <paramref name="giveUp"/> says what the error is.</summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, GiveUp giveUp, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            Exception failure;
            TimeSpan? retryAfter;
            using (var slot = Gate is null ? null : await Gate.EnterAsync(cancellationToken).ConfigureAwait(false))
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var result = await call(cancellationToken).ConfigureAwait(false);
                    Gate?.OnSuccess(TimeSpan.FromTicks((long)((Stopwatch.GetTimestamp() - started) * TicksPerTimestamp)));
                    return result;
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested && CosmosErrors.IsTransient(ex))
                {
                    var cosmos = (ex as TransientResponseException)?.Error ?? ex as CosmosException;
                    failure = (ex as TransientResponseException)?.Error ?? ex;
                    retryAfter = (ex as TransientResponseException)?.RetryAfter ?? cosmos?.RetryAfter;
                    if (cosmos is not null)
                    {
                        Gate?.Record(cosmos.RequestCharge);
                        if (cosmos.StatusCode == (HttpStatusCode)429 && slot is not null)
                        {
                            Gate!.OnThrottled(slot);
                        }
                    }
                }
            }

            if (attempt >= MaxAttempts)
            {
                throw CosmosErrors.Wrap(failure, MigrationErrorKind.Transient, giveUp.ErrorId, giveUp.Message, giveUp.Target, giveUp.RecommendedAction);
            }

            Interlocked.Increment(ref _retries);
            Gate?.OnRetry();
            await Task.Delay(Backoff.Delay(attempt, retryAfter), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every document a query answers (small bookkeeping queries: leases, ledgers), read
    /// again from the first page when a page fails transiently; within <paramref name="range"/>
    /// when one is given.</summary>
    public Task<IReadOnlyList<JObject>> QueryAllAsync(Container container, QueryDefinition query, GiveUp giveUp, CancellationToken cancellationToken, FeedRange? range = null) =>
        RunAsync<IReadOnlyList<JObject>>(async ct =>
        {
            var documents = new List<JObject>();
            using var iterator = range is null ? container.GetItemQueryStreamIterator(query) : container.GetItemQueryStreamIterator(range, query, null);
            while (iterator.HasMoreResults)
            {
                using var response = await iterator.ReadNextAsync(ct).ConfigureAwait(false);
                response.EnsureSuccessStatusCode();
                documents.AddRange(DocumentJson.ReadPage(response.Content).OfType<JObject>());
            }

            return documents;
        }, giveUp, cancellationToken);

    private static TimeSpan? RetryAfter(ResponseMessage response) =>
        double.TryParse(response.Headers["x-ms-retry-after-ms"], NumberStyles.Float, CultureInfo.InvariantCulture, out var ms)
            ? TimeSpan.FromMilliseconds(ms)
            : null;

    /// <summary>A stream response with a transient status, as an exception the loop retries (a
    /// <see cref="CosmosException"/> built from a response cannot carry its retry-after).</summary>
    private sealed class TransientResponseException : Exception
    {
        public TransientResponseException(CosmosException error, TimeSpan? retryAfter)
            : base(error.Message, error)
        {
            Error = error;
            RetryAfter = retryAfter;
        }

        public CosmosException Error { get; }

        public TimeSpan? RetryAfter { get; }
    }
}

/// <summary>The error to raise when a call kept failing transiently.</summary>
internal sealed record GiveUp(string ErrorId, string Message, object? Target, string? RecommendedAction = null);
