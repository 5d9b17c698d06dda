using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

public sealed partial class MigrationConnection
{
    private async Task VerifyAsync(Func<string, bool>? confirmCreate, CancellationToken timeoutToken, CancellationToken userToken)
    {
        try
        {
            await Database.ReadAsync(cancellationToken: timeoutToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }

        try
        {
            var properties = (await Tracking.ReadContainerAsync(cancellationToken: timeoutToken).ConfigureAwait(false)).Resource;
            if (properties.PartitionKeyPath != "/id")
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "TrackingContainerInvalid",
                    $"The tracking container '{TrackingContainerName}' exists with partition key '{properties.PartitionKeyPath}'; it must be '/id'.",
                    TrackingContainerName, "Pass -TrackingContainer with another name; the module creates it with partition key /id.");
            }

            TrackingContainerExists = true;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            if (confirmCreate is null || confirmCreate(TrackingContainerName))
            {
                try
                {
                    await CreateContainerIfMissingAsync(new ContainerProperties(TrackingContainerName, "/id"), timeoutToken).ConfigureAwait(false);
                }
                catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
                {
                    throw ContainerNotCreatable(refused, TrackingContainerName, "/id", "TrackingContainerMissing", "the tracking container");
                }

                TrackingContainerExists = true;
            }
        }
        catch (Exception ex) when (ex is not MigrationException && !userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }

        if (Settings.UsesToken && TrackingContainerExists)
        {
            await PreflightAsync(timeoutToken, userToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the journal container exists (read at connect for a token's connection,
    /// which cannot create it; null when not read).</summary>
    public bool? JournalContainerExists { get; private set; }

    /// <summary>With a Microsoft Entra ID token, proves at connect what a run will need, so that a
    /// missing data-plane role fails here and not at the first write of a migration an hour later:
    /// a point read and a delete of an item that does not exist in the tracking container (the
    /// service checks the role before it looks for the item: 404 means allowed, 403 with substatus
    /// 5301 means no role). Nothing is written. Then it looks for the journal container, which a
    /// token cannot create.</summary>
    private async Task PreflightAsync(CancellationToken timeoutToken, CancellationToken userToken)
    {
        var probe = "cosmosmigrations-preflight-" + Guid.NewGuid().ToString("N");
        var key = new PartitionKey(probe);
        try
        {
            using (var read = await Tracking.ReadItemStreamAsync(probe, key, cancellationToken: timeoutToken).ConfigureAwait(false))
            {
                CheckAllowed(read, "read documents of the tracking container");
            }

            using (var delete = await Tracking.DeleteItemStreamAsync(probe, key, cancellationToken: timeoutToken).ConfigureAwait(false))
            {
                CheckAllowed(delete, "write documents of the tracking container");
            }

            try
            {
                await Database.GetContainer(JournalContainerName).ReadContainerAsync(cancellationToken: timeoutToken).ConfigureAwait(false);
                JournalContainerExists = true;
            }
            catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
            {
                JournalContainerExists = false;
            }
        }
        catch (Exception ex) when (ex is not MigrationException && !userToken.IsCancellationRequested)
        {
            throw TranslateOpenFailure(ex, timeoutToken.IsCancellationRequested);
        }
    }

    private void CheckAllowed(ResponseMessage response, string what)
    {
        if (response.StatusCode is HttpStatusCode.NotFound || response.IsSuccessStatusCode)
        {
            return;
        }

        var failure = CosmosErrors.FromResponse(response);
        if (failure.StatusCode == HttpStatusCode.Forbidden)
        {
            throw DataRoleMissing(failure, what);
        }

        throw TranslateOpenFailure(failure, false);
    }
}
