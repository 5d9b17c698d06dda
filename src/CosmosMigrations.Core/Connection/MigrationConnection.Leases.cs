using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

public sealed partial class MigrationConnection
{
    /// <summary>The lease container of distributed runs: beside the tracking container, named
    /// after it with "-leases", partition key /id (as the change feed processor needs). Created
    /// when missing; one that exists with another partition key is an error.</summary>
    public string LeaseContainerName => TrackingContainerName + "-leases";

    internal async Task<Container> EnsureLeaseContainerAsync(CancellationToken cancellationToken)
    {
        ResourceName.Validate(LeaseContainerName, "lease container");
        ContainerProperties properties;
        try
        {
            // Read first: the SDK's create-if-not-exists throws a bare ArgumentException when the
            // container exists with another partition key.
            properties = (await Database.GetContainer(LeaseContainerName).ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            properties = await CreateLeaseContainerAsync(cancellationToken).ConfigureAwait(false);
        }

        var keys = properties.PartitionKeyPaths is { Count: > 0 } paths ? paths : new[] { properties.PartitionKeyPath ?? "" };
        if (keys.Count != 1 || keys[0] != "/id")
        {
            throw new MigrationException(MigrationErrorKind.InvalidState, "LeaseContainerInvalid",
                $"The lease container '{LeaseContainerName}' exists with partition key '{string.Join(", ", keys)}'; the change feed processor needs '/id'.",
                LeaseContainerName, $"Use -TrackingContainer with another name on Connect-CosmosMigration (the lease container is named after it), or recreate '{LeaseContainerName}' with partition key /id.");
        }

        return Database.GetContainer(LeaseContainerName);
    }

    private async Task<ContainerProperties> CreateLeaseContainerAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await CreateContainerIfMissingAsync(new ContainerProperties(LeaseContainerName, "/id"), cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.BadRequest)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidState, "LeaseContainerUnavailable",
                $"The lease container '{LeaseContainerName}' of distributed runs could not be created in database '{DatabaseName}'.", LeaseContainerName,
                $"Create a container '{LeaseContainerName}' with partition key /id (a database with shared throughput may have no room for another container), or run without -Distributed.");
        }
    }
}
