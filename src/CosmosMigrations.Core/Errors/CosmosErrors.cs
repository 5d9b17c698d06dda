using System.IO;
using System.Net.Http;
using System.Net.Sockets;

namespace CosmosMigrations.Errors;

/// <summary>Classifies failures of calls to Cosmos DB and turns them into <see cref="MigrationException"/>.</summary>
internal static class CosmosErrors
{
    /// <summary>True for failures that a later attempt may not repeat: throttling beyond the SDK's
    /// own retries, 503 (which the SDK does not retry in a single region), 408, 410/449 and dropped
    /// or timed-out connections.</summary>
    public static bool IsTransient(Exception exception)
    {
        switch (exception)
        {
            case CosmosException cosmos:
                return IsTransient(cosmos.StatusCode);
            case HttpRequestException:
            case IOException:
            case SocketException:
            case TimeoutException:
                return true;
            case OperationCanceledException:
                return false;
            case AggregateException aggregate when aggregate.InnerExceptions.Count == 1:
                return IsTransient(aggregate.InnerExceptions[0]);
            default:
                return exception.InnerException is not null && IsTransient(exception.InnerException);
        }
    }

    /// <summary>The statuses a later attempt may not repeat (0: the SDK's own code for a request
    /// that never got an answer).</summary>
    public static bool IsTransient(HttpStatusCode status) => (int)status is 0 or 408 or 410 or 429 or 449 or 503;

    /// <summary>Wraps a Cosmos failure with its diagnostics (status, sub-status, activity id, charge,
    /// retry-after). The SDK's message can be long; the first line says what the service said.</summary>
    public static MigrationException Wrap(Exception exception, MigrationErrorKind kind, string errorId, string message,
        object? target = null, string? recommendedAction = null)
    {
        if (exception is CosmosException cosmos)
        {
            var said = FirstLine(cosmos.ResponseBody ?? cosmos.Message);
            return new MigrationException(kind, errorId, $"{message} (HTTP {(int)cosmos.StatusCode}/{cosmos.SubStatusCode}{(said.Length == 0 ? "" : ": " + said)})",
                target, recommendedAction, exception)
            {
                StatusCode = cosmos.StatusCode,
                SubStatusCode = cosmos.SubStatusCode,
                ActivityId = cosmos.ActivityId,
                RequestCharge = cosmos.RequestCharge,
                RetryAfter = cosmos.RetryAfter,
            };
        }

        return new MigrationException(kind, errorId, $"{message} ({FirstLine(exception.Message)})", target, recommendedAction, exception);
    }

    /// <summary>The failure a stream response carries, as the exception the typed API would throw.</summary>
    public static CosmosException FromResponse(ResponseMessage response)
    {
        int.TryParse(response.Headers["x-ms-substatus"], out var subStatus);
        return new CosmosException(response.ErrorMessage ?? response.StatusCode.ToString(), response.StatusCode, subStatus,
            response.Headers.ActivityId, response.Headers.RequestCharge);
    }

    internal static string FirstLine(string text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var end = text.IndexOfAny(new[] { '\r', '\n' });
        var line = end < 0 ? text : text.Substring(0, end);
        return line.Length > 300 ? line.Substring(0, 300) + "…" : line;
    }
}
