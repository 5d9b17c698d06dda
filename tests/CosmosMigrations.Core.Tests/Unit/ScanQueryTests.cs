using System.Collections;
using CosmosMigrations.Definitions;
using CosmosMigrations.Steps;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Tests.Unit;

/// <summary>What a migrating scan asks the service for: only the properties its operations touch
/// (plus id, ETag and partition key), or whole documents when an operation needs them.</summary>
public sealed class ScanQueryTests
{
    private static DocumentPass Pass(params Hashtable[] operations)
    {
        var definition = new DefinitionParser().ParseInline("q", "users", null, operations.Cast<object?>().ToArray());
        return Assert.IsType<DocumentPass>(Assert.Single(definition.Steps));
    }

    private static readonly FieldPath[] PartitionKey = { FieldPath.Parse("tenant") };

    [Fact]
    public void A_constant_field_reads_only_id_etag_partition_key_and_the_field()
    {
        var pass = Pass(new Hashtable { ["AddField"] = "avatarUrl", ["Value"] = "x" });

        Assert.Equal(
            "SELECT VALUE {\"id\": c[\"id\"], \"_etag\": c[\"_etag\"], \"tenant\": c[\"tenant\"], \"avatarUrl\": c[\"avatarUrl\"]} FROM c WHERE NOT IS_DEFINED(c[\"avatarUrl\"])",
            pass.ScanQueryText(PartitionKey));
        // A dry run still shows whole documents.
        Assert.Equal("SELECT * FROM c WHERE NOT IS_DEFINED(c[\"avatarUrl\"])", pass.QueryText);
    }

    [Fact]
    public void Nested_fields_bring_their_top_level_property_and_templates_their_sources()
    {
        var pass = Pass(
            new Hashtable { ["AddField"] = "settings.theme", ["Value"] = "dark" },
            new Hashtable { ["AddField"] = "avatarUrl", ["Template"] = "https://x/{name:uri}/{profile.city}" },
            new Hashtable { ["RenameField"] = "userName", ["To"] = "displayName" });

        Assert.Equal(new[] { "settings", "avatarUrl", "name", "profile", "userName", "displayName" }, pass.Properties);
        Assert.StartsWith("SELECT VALUE {\"id\": c[\"id\"], \"_etag\": c[\"_etag\"], \"tenant\": c[\"tenant\"], \"settings\": c[\"settings\"], ", pass.ScanQueryText(PartitionKey));
    }

    [Fact]
    public void Property_names_are_escaped_as_string_literals()
    {
        var pass = Pass(new Hashtable { ["RemoveField"] = "[\"we\\\"ird} name\"]" });

        Assert.Contains("\"we\\\"ird} name\": c[\"we\\\"ird} name\"]", pass.ScanQueryText(PartitionKey));
    }

    [Fact]
    public void A_transform_reads_whole_documents()
    {
        var pass = Pass(
            new Hashtable { ["AddField"] = "a", ["Value"] = 1 },
            new Hashtable { ["Transform"] = new TransformFunction("t", "$doc", (d, _) => Task.FromResult<JObject?>(d)) });

        Assert.Null(pass.Properties);
        Assert.Equal(pass.QueryText, pass.ScanQueryText(PartitionKey));
    }

    [Fact]
    public void A_run_that_keeps_images_of_removed_fields_reads_whole_documents()
    {
        var pass = Pass(new Hashtable { ["RemoveField"] = "legacy" });

        Assert.Equal(new[] { "id", "_etag", "tenant", "legacy" }, pass.ReadProperties(PartitionKey));
        Assert.Null(pass.ReadProperties(PartitionKey, journaled: true));
        Assert.Equal(new[] { "id", "_etag", "tenant", "avatarUrl" },
            Pass(new Hashtable { ["AddField"] = "avatarUrl", ["Value"] = "x" }).ReadProperties(PartitionKey, journaled: true));
    }
}
