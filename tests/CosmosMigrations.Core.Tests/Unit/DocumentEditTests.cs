using System.Collections;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;
using CosmosMigrations.Steps;
using Microsoft.Azure.Cosmos;

namespace CosmosMigrations.Tests.Unit;

public sealed class DocumentEditTests
{
    private static JObject Doc(string json) => JObject.Parse(json);

    private static async Task<DocumentEdit> ApplyAsync(JObject document, params DocumentOperation[] operations)
    {
        var edit = new DocumentEdit(document);
        foreach (var operation in operations)
        {
            await operation.ApplyAsync(edit, CancellationToken.None);
        }

        return edit;
    }

    [Fact]
    public async Task AddField_sets_only_where_missing_and_guards_the_patch()
    {
        var add = AddFieldOperation.WithValue(FieldPath.Parse("avatarUrl"), "x");
        var edit = await ApplyAsync(Doc("{\"id\":\"1\"}"), add);
        Assert.Single(edit.Patch);
        Assert.Equal(PatchOperationType.Set, edit.Patch[0].OperationType);
        Assert.Equal(new[] { "NOT IS_DEFINED(c[\"avatarUrl\"])" }, edit.Guards);
        Assert.False(edit.DerivesFromDocument);

        Assert.False((await ApplyAsync(Doc("{\"id\":\"1\",\"avatarUrl\":null}"), add)).Changed);
    }

    [Fact]
    public async Task Setting_a_nested_field_creates_the_first_missing_parent_whole()
    {
        var edit = await ApplyAsync(Doc("{\"id\":\"1\"}"), new SetFieldOperation(FieldPath.Parse("settings.ui.theme"), "dark"));
        Assert.Equal("/settings", edit.Patch.Single().Path);
        Assert.Equal("dark", (string?)edit.Current.SelectToken("settings.ui.theme"));

        var failure = await Assert.ThrowsAsync<DocumentOperationException>(() => ApplyAsync(Doc("{\"id\":\"1\",\"settings\":\"flat\"}"), new SetFieldOperation(FieldPath.Parse("settings.theme"), "dark")));
        Assert.Contains("is a string", failure.Message);
    }

    [Fact]
    public async Task Template_url_encodes_and_marks_the_value_derived()
    {
        var add = AddFieldOperation.WithTemplate(FieldPath.Parse("avatarUrl"), FieldTemplate.Parse("https://x/{name:uri}?u={profile.id}"));
        var edit = await ApplyAsync(Doc("{\"id\":\"1\",\"name\":\"Ann Lee & co\",\"profile\":{\"id\":7}}"), add);
        Assert.Equal("https://x/Ann%20Lee%20%26%20co?u=7", (string?)edit.Current["avatarUrl"]);
        Assert.True(edit.DerivesFromDocument);

        await Assert.ThrowsAsync<DocumentOperationException>(() => ApplyAsync(Doc("{\"id\":\"1\"}"), add));
    }

    [Fact]
    public async Task Rename_copies_or_moves_and_never_overwrites_a_target()
    {
        var copy = await ApplyAsync(Doc("{\"id\":\"1\",\"userName\":\"u\"}"), new RenameFieldOperation(FieldPath.Parse("userName"), FieldPath.Parse("displayName"), keepSource: true));
        Assert.Equal("u", (string?)copy.Current["displayName"]);
        Assert.Equal("u", (string?)copy.Current["userName"]);

        var move = await ApplyAsync(Doc("{\"id\":\"1\",\"userName\":\"old\",\"displayName\":\"new\"}"), new RenameFieldOperation(FieldPath.Parse("userName"), FieldPath.Parse("displayName"), keepSource: false));
        Assert.Equal("new", (string?)move.Current["displayName"]);
        Assert.Null(move.Current["userName"]);
        Assert.Equal(PatchOperationType.Remove, move.Patch.Single().OperationType);
    }

    [Theory]
    [InlineData("\"high\"", "3")]
    [InlineData("\"HIGH\"", "3")]
    [InlineData("\"urgent\"", "1")]
    public async Task ConvertField_maps_values_and_uses_the_default(string value, string expected)
    {
        var map = new System.Collections.Generic.Dictionary<string, JToken> { ["low"] = 1, ["medium"] = 2, ["high"] = 3 };
        var convert = new ConvertFieldOperation(FieldPath.Parse("priority"), FieldPath.Parse("priorityLevel"), map, null, new JValue(1));
        var edit = await ApplyAsync(Doc("{\"id\":\"1\",\"priority\":" + value + "}"), convert);
        Assert.Equal(expected, edit.Current["priorityLevel"]!.ToString());
    }

    [Fact]
    public async Task ConvertField_without_a_default_fails_the_document_with_its_value()
    {
        var convert = new ConvertFieldOperation(FieldPath.Parse("age"), FieldPath.Parse("ageNumber"), null, "number", null);
        Assert.Equal(42L, (long)(await ApplyAsync(Doc("{\"id\":\"1\",\"age\":\" 42 \"}"), convert)).Current["ageNumber"]!);
        var failure = await Assert.ThrowsAsync<DocumentOperationException>(() => ApplyAsync(Doc("{\"id\":\"1\",\"age\":\"forty\"}"), convert));
        Assert.Contains("\"forty\"", failure.Message);
    }

    [Fact]
    public async Task A_transform_replaces_the_document_but_keeps_system_properties_and_refuses_a_new_id()
    {
        var upper = new TransformOperation(new TransformFunction("upper", "src", (doc, _) =>
        {
            doc["name"] = ((string?)doc["name"])!.ToUpperInvariant();
            doc["_etag"] = "forged";
            return Task.FromResult<JObject?>(doc);
        }));
        var edit = await ApplyAsync(Doc("{\"id\":\"1\",\"name\":\"a\",\"_etag\":\"e1\"}"), upper);
        Assert.True(edit.NeedsReplace);
        Assert.Equal("A", (string?)edit.Current["name"]);
        Assert.Equal("e1", (string?)edit.Current["_etag"]);

        var rename = new TransformOperation(new TransformFunction("id", "src", (doc, _) => { doc["id"] = "2"; return Task.FromResult<JObject?>(doc); }));
        await Assert.ThrowsAsync<DocumentOperationException>(() => ApplyAsync(Doc("{\"id\":\"1\"}"), rename));

        var unchanged = new TransformOperation(new TransformFunction("same", "src", (doc, _) => Task.FromResult<JObject?>(doc)));
        Assert.False((await ApplyAsync(Doc("{\"id\":\"1\",\"_etag\":\"e\"}"), unchanged)).Changed);
    }

    [Fact]
    public void The_parser_names_unknown_operations_and_keys()
    {
        var parser = new DefinitionParser();
        var unknownKey = Assert.Throws<MigrationException>(() => parser.ParseInline("m", "c", null, new object?[] { new Hashtable { ["AddField"] = "a", ["Valeu"] = 1 } }));
        Assert.Contains("'Valeu' is not a key of AddField", unknownKey.Message);
        var unknownOp = Assert.Throws<MigrationException>(() => parser.ParseInline("m", "c", null, new object?[] { new Hashtable { ["DropField"] = "a" } }));
        Assert.Contains("Known operations", unknownOp.Message);
        var both = Assert.Throws<MigrationException>(() => parser.ParseInline("m", "c", null, new object?[] { new Hashtable { ["AddField"] = "a", ["Value"] = 1, ["Template"] = "{x}" } }));
        Assert.Contains("exactly one of Value, Template or CopyFrom", both.Message);
    }

    [Fact]
    public void Operations_of_a_migration_share_one_pass_and_the_checksum_follows_the_definition()
    {
        var parser = new DefinitionParser();
        var ops = new object?[] { new Hashtable { ["AddField"] = "a", ["Value"] = 1 }, new Hashtable { ["RemoveField"] = "b" } };
        var definition = parser.ParseInline("m", "c", "one", ops);
        var pass = Assert.IsType<DocumentPass>(Assert.Single(definition.Steps));
        Assert.Equal("(NOT IS_DEFINED(c[\"a\"]) OR IS_DEFINED(c[\"b\"]))", pass.ScanCondition);
        Assert.Equal(definition.Checksum, parser.ParseInline("m", "c", "reworded", ops).Checksum);
        Assert.NotEqual(definition.Checksum, parser.ParseInline("m", "c", "one", new object?[] { new Hashtable { ["AddField"] = "a", ["Value"] = 2 } }).Checksum);
    }

    [Theory]
    [InlineData("c.a = 1; DELETE")]
    [InlineData("c.a = 1 -- comment")]
    [InlineData("c.a = 1) OR (1 = 1")]
    [InlineData("c.a = 'x")]
    public void Filters_that_could_escape_their_clause_are_refused(string filter)
    {
        var error = Assert.Throws<MigrationException>(() => DefinitionParser.ValidateFilter(filter, "t"));
        Assert.Equal("InvalidFilter", error.ErrorId);
    }
}
