using System.Security.Cryptography;
using System.Text;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Definitions;

/// <summary>A migration: a name (the tracking document's id), a container, a description and
/// ordered steps, with a checksum over everything that changes what it does.</summary>
internal sealed class MigrationDefinition
{
    public MigrationDefinition(string name, string container, string? description, IReadOnlyList<MigrationStep> steps, string? sourcePath = null)
    {
        Name = name;
        Container = container;
        Description = description;
        Steps = steps;
        SourcePath = sourcePath;
        Checksum = ComputeChecksum();
    }

    public string Name { get; }

    public string Container { get; }

    public string? Description { get; }

    public IReadOnlyList<MigrationStep> Steps { get; }

    /// <summary>The .psd1 file it came from, if any.</summary>
    public string? SourcePath { get; }

    /// <summary>An inline migration's or a backfill's definition as its tracking document keeps
    /// it, so that it resumes by name; null for a migration from a file.</summary>
    public StoredDefinition? Stored { get; internal set; }

    /// <summary>SHA-256 (hex) of the canonical definition: name, container and steps. The
    /// description is left out: rewording it does not change what the migration does.</summary>
    public string Checksum { get; }

    private string ComputeChecksum()
    {
        var canonical = new JObject
        {
            ["name"] = Name,
            ["container"] = Container,
            ["steps"] = new JArray(Steps.Select(s => s.ToCanonical())),
        };
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString(Formatting.None)))).ToLowerInvariant();
    }

    public override string ToString() => $"{Name} ({Container})";
}
