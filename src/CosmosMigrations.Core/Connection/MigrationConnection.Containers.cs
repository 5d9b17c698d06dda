using System.Collections.Concurrent;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

public sealed partial class MigrationConnection
{
    private readonly ConcurrentDictionary<string, TargetContainer> _containers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TargetContainer> _stores = new(StringComparer.Ordinal);

    /// <summary>A container of the database with its partition key definition, cached per name
    /// (<paramref name="refresh"/> reads it again: a container deleted and created again under the
    /// same name is another container).</summary>
    internal async Task<TargetContainer> GetContainerAsync(string name, CancellationToken cancellationToken, bool refresh = false)
    {
        ResourceName.Validate(name, "container");
        if (!refresh && _containers.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var container = Database.GetContainer(name);
        ContainerProperties properties;
        try
        {
            properties = (await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            var known = await ListContainersAsync(cancellationToken).ConfigureAwait(false);
            var suggestion = known.Count == 0 ? "The database has no containers." : "Containers in the database: " + string.Join(", ", known) + ".";
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.ContainerNotFound, "ContainerNotFound",
                $"Container '{name}' does not exist in database '{DatabaseName}'.", name,
                $"Check the name (it is case-sensitive). {suggestion}");
        }

        var paths = properties.PartitionKeyPaths is { Count: > 0 } ? properties.PartitionKeyPaths : new[] { properties.PartitionKeyPath ?? "/id" };
        var target = new TargetContainer(name, container, new PartitionKeyReader(paths), properties.SelfLink);
        _containers[name] = target;
        return target;
    }

    /// <summary>The journal container of this connection's tracking container: where runs keep the
    /// before-images of what they change ("migrations-journal" beside "migrations"). Opened by
    /// <c>Journal.JournalStore.OpenContainerAsync</c>.</summary>
    public string JournalContainerName => TrackingContainerName + "-journal";

    /// <summary>The failure store beside this connection's tracking container ("migrations-failures"
    /// beside "migrations"): documents that migrations could not change. Opened by
    /// <c>Failures.FailureStore.OpenContainerAsync</c>.</summary>
    public string FailureContainerName => TrackingContainerName + "-failures";

    /// <summary>A container the engine keeps beside the tracking container (the journal, the failure
    /// store), opened for the store that owns it, which says what a new one is
    /// (<paramref name="properties"/>: name, partition key, indexing, TTL). Cached by name; created
    /// when <paramref name="create"/> and missing (a token, which cannot create containers: the error
    /// <paramref name="missingId"/> naming the <paramref name="what"/>, with <paramref name="otherwise"/>
    /// as a way out). Missing and not to be created: the error <paramref name="gone"/> makes of the
    /// service's 404, or null without it.</summary>
    internal async Task<TargetContainer?> GetStoreContainerAsync(ContainerProperties properties, bool create, string what, string missingId, string otherwise,
        Func<CosmosException, Exception>? gone, CancellationToken cancellationToken)
    {
        var name = properties.Id;
        ResourceName.Validate(name, what);
        if (_stores.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var container = Database.GetContainer(name);
        try
        {
            await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound && !create)
        {
            return gone is null ? null : throw gone(ex);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            try
            {
                await CreateContainerIfMissingAsync(properties, cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
            {
                throw ContainerNotCreatable(refused, name, properties.PartitionKeyPath + " --ttl -1", missingId, "the " + what, otherwise);
            }
        }

        var store = new TargetContainer(name, container, new PartitionKeyReader(new[] { properties.PartitionKeyPath }));
        _stores[name] = store;
        return store;
    }

    internal async Task<IReadOnlyList<string>> ListContainersAsync(CancellationToken cancellationToken)
    {
        var names = new List<string>();
        using var iterator = Database.GetContainerQueryIterator<ContainerProperties>();
        while (iterator.HasMoreResults)
        {
            foreach (var c in await iterator.ReadNextAsync(cancellationToken).ConfigureAwait(false))
            {
                names.Add(c.Id);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Creates the tracking container if it does not exist (for a context opened without it).</summary>
    internal async Task EnsureTrackingContainerAsync(CancellationToken cancellationToken)
    {
        if (TrackingContainerExists)
        {
            return;
        }

        await CreateContainerIfMissingAsync(new ContainerProperties(TrackingContainerName, "/id"), cancellationToken).ConfigureAwait(false);
        TrackingContainerExists = true;
    }

    /// <summary>Creates a container unless it exists. Several processes may start at once (the
    /// workers of a distributed run, runbook jobs): the one whose create loses the race gets 409
    /// Conflict, and then reads what the winner created.</summary>
    private async Task<ContainerProperties> CreateContainerIfMissingAsync(ContainerProperties properties, CancellationToken cancellationToken)
    {
        try
        {
            return (await Database.CreateContainerIfNotExistsAsync(properties, cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.Conflict)
        {
            return (await Database.GetContainer(properties.Id).ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
    }
}
