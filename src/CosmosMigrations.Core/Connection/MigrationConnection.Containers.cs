using System.Collections.Concurrent;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

public sealed partial class MigrationConnection
{
    private readonly ConcurrentDictionary<string, TargetContainer> _containers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TargetContainer> _journals = new(StringComparer.Ordinal);

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
    /// before-images of what they change ("migrations-journal" beside "migrations").</summary>
    public string JournalContainerName => TrackingContainerName + "-journal";

    /// <summary>A journal container, created when <paramref name="create"/> and missing (see
    /// <see cref="Journal.JournalStore.NewContainerProperties"/>); missing and not to be created is
    /// JournalMissing.</summary>
    internal async Task<TargetContainer> GetJournalAsync(string name, bool create, CancellationToken cancellationToken)
    {
        ResourceName.Validate(name, "journal container");
        if (_journals.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var container = Database.GetContainer(name);
        try
        {
            await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound && create)
        {
            try
            {
                await CreateContainerIfMissingAsync(Journal.JournalStore.NewContainerProperties(name), cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
            {
                throw ContainerNotCreatable(refused, name, Journal.JournalStore.PartitionKeyPath + " --ttl -1", "JournalContainerMissing", "the journal container",
                    " Or run with -NoJournal (the run then cannot be undone).");
            }
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidState, "JournalMissing",
                $"The journal container '{name}' does not exist: the before-images it held are gone.", name,
                "Nothing can be undone without them; write a new migration that reverses the change.");
        }

        var journal = new TargetContainer(name, container, new PartitionKeyReader(new[] { Journal.JournalStore.PartitionKeyPath }));
        _journals[name] = journal;
        return journal;
    }

    /// <summary>The failure store beside this connection's tracking container ("migrations-failures"
    /// beside "migrations"): documents that migrations could not change.</summary>
    public string FailureContainerName => TrackingContainerName + "-failures";

    private TargetContainer? _failures;

    /// <summary>The failure store's container, created when <paramref name="create"/> and missing
    /// (<see cref="Failures.FailureStore.NewContainerProperties"/>); null when missing and not to be created.</summary>
    internal async Task<TargetContainer?> GetFailureContainerAsync(bool create, CancellationToken cancellationToken)
    {
        if (_failures is { } cached)
        {
            return cached;
        }

        var name = FailureContainerName;
        ResourceName.Validate(name, "failure store container");
        var container = Database.GetContainer(name);
        try
        {
            await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound && !create)
        {
            return null;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            try
            {
                await CreateContainerIfMissingAsync(Failures.FailureStore.NewContainerProperties(name), cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException refused) when (refused.StatusCode == HttpStatusCode.Forbidden && Settings.UsesToken)
            {
                throw ContainerNotCreatable(refused, name, Failures.FailureStore.PartitionKeyPath + " --ttl -1", "FailureStoreMissing", "the failure store container", "");
            }
        }

        return _failures = new TargetContainer(name, container, new PartitionKeyReader(new[] { Failures.FailureStore.PartitionKeyPath }));
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
