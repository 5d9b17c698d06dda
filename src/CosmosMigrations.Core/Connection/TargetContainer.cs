using CosmosMigrations.Documents;

namespace CosmosMigrations.Connection;

/// <summary>A target container, how to read its documents' partition keys, and its resource id
/// (the service's self link: a container deleted and created again under the same name has another).</summary>
internal sealed record TargetContainer(string Name, Container Container, PartitionKeyReader PartitionKey, string? ResourceId = null);
