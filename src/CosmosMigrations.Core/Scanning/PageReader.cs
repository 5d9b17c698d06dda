using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Scanning;

/// <summary>One page of a scan, and the continuation token that resumes after it.</summary>
internal sealed record Page(IReadOnlyList<JObject> Documents, string? ContinuationAfter);

/// <summary>Reads a query page by page over one feed range. Only one page is held at a time; a
/// page that fails transiently is read again from the last good continuation token (a fresh
/// iterator), so a retry can neither skip nor repeat a page.</summary>
internal sealed class PageReader : IDisposable
{
    private readonly Container _container;
    private readonly FeedRange? _range;
    private readonly QueryDefinition _query;
    private readonly int _pageSize;
    private readonly ResilientSender _sender;
    private FeedIterator? _iterator;
    private bool _iteratorSuspect;

    public PageReader(Container container, FeedRange? range, QueryDefinition query, string? continuation, int pageSize, ResilientSender sender)
    {
        _container = container;
        _range = range;
        _query = query;
        Continuation = continuation;
        _pageSize = pageSize;
        _sender = sender;
    }

    /// <summary>Where the next page starts (null before the first page of a fresh scan).</summary>
    public string? Continuation { get; private set; }

    public bool Finished { get; private set; }

    /// <summary>The next page, or null when the scan is complete.</summary>
    public async Task<Page?> ReadAsync(CancellationToken cancellationToken)
    {
        if (Finished)
        {
            return null;
        }

        using var response = await _sender.SendAsync(async ct =>
        {
            if (_iterator is null || _iteratorSuspect)
            {
                _iterator?.Dispose();
                var options = new QueryRequestOptions { MaxItemCount = _pageSize };
                _iterator = _range is null
                    ? _container.GetItemQueryStreamIterator(_query, Continuation, options)
                    : _container.GetItemQueryStreamIterator(_range, _query, Continuation, options);
            }

            _iteratorSuspect = true;
            var page = await _iterator.ReadNextAsync(ct).ConfigureAwait(false);
            _iteratorSuspect = !page.IsSuccessStatusCode;
            return page;
        }, "Reading a page", cancellationToken).ConfigureAwait(false);

        if (!response.IsSuccessStatusCode)
        {
            var error = CosmosErrors.FromResponse(response);
            if (response.StatusCode == HttpStatusCode.BadRequest)
            {
                throw CosmosErrors.Wrap(error, MigrationErrorKind.InvalidArgument, "InvalidQuery",
                    $"The service rejected the scan query: {_query.QueryText}", _query.QueryText,
                    "Check the filter: it must be a Cosmos SQL condition over c, e.g. NOT IS_DEFINED(c.avatarUrl).");
            }

            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw CosmosErrors.Wrap(error, MigrationErrorKind.ContainerNotFound, "ContainerNotFound",
                    $"Container '{_container.Id}' no longer exists.", _container.Id);
            }

            throw CosmosErrors.Wrap(error, MigrationErrorKind.ServiceError, "ReadFailed", "Reading a page failed.", _container.Id);
        }

        var documents = new List<JObject>();
        foreach (var token in DocumentJson.ReadPage(response.Content))
        {
            if (token is JObject document)
            {
                documents.Add(document);
            }
        }

        Continuation = response.ContinuationToken;
        Finished = Continuation is null || !_iterator!.HasMoreResults;
        return new Page(documents, Finished ? null : Continuation);
    }

    public void Dispose() => _iterator?.Dispose();
}
