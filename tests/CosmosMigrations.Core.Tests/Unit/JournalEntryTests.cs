using CosmosMigrations.Documents;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json;

namespace CosmosMigrations.Tests.Unit;

/// <summary>Before-images (<see cref="JournalEntry"/>): what is recorded for each kind of change, how
/// a restore puts every field back in its place, how a document's state is judged (still as the
/// migration left it, already restored, or changed since), and how an entry already in the journal
/// is merged, never overwritten with a state the migration already changed.</summary>
public sealed class JournalEntryTests
{
    private static readonly FieldPath[] Key = { FieldPath.Parse("pk") };

    private static readonly JournalScope Scope = new("j1", "m1", "users");

    private static JObject Doc(string json) => (JObject)DocumentJson.Parse(json);

    private static string Text(JToken token) => token.ToString(Formatting.None);

    /// <summary>An edit of <paramref name="original"/> that replaces it with the document <paramref name="after"/> (a transform's).</summary>
    private static DocumentEdit Replaced(JObject original, string after)
    {
        var edit = new DocumentEdit(original);
        edit.ReplaceWith(Doc(after));
        return edit;
    }

    private static async Task<DocumentEdit> EditAsync(JObject document, params DocumentOperation[] operations)
    {
        var edit = new DocumentEdit(document);
        foreach (var operation in operations)
        {
            await operation.ApplyAsync(edit, CancellationToken.None);
        }

        return edit;
    }

    /// <summary>The journal's round trip: stored as JSON, read back, restored onto the migrated document.</summary>
    private static JObject Undo(JournalEntry entry, JObject migrated) =>
        JournalEntry.FromJson(entry.ToJson(Scope, 0, null)).RestoreOnto(migrated, force: false);

    [Fact]
    public async Task An_added_field_is_recorded_with_its_value_and_restored_by_a_guarded_patch_without_a_read()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"name\":\"Zoë\"}");
        var edit = await EditAsync(original, AddFieldOperation.WithValue(FieldPath.Parse("avatar"), "x"));
        var entry = JournalEntry.FromEdit(edit, Key);

        var json = entry.ToJson(Scope, 2, 3600);
        Assert.Equal("d1", (string?)json["id"]);
        Assert.Equal(Scope.PartitionKeyFor(2, Doc("{\"pk\":\"p1\"}")), (string?)json["pk"]);
        Assert.Equal("[{\"path\":\"/avatar\",\"after\":\"x\"}]", Text(json["changes"]!));
        Assert.Equal(3600, (int)json["ttl"]!);
        Assert.True(entry.CanRestoreUnread);

        // The patch is planned on what the entry knows (id, key, the value written), guarded.
        var restore = new DocumentEdit(entry.AsWritten());
        Assert.Equal(RestoreState.Restorable, entry.StateOf(restore.Current));
        entry.PlanRestore(restore, force: false);
        Assert.Equal(PatchOperationType.Remove, restore.Patch.Single().OperationType);
        Assert.Equal(new[] { "c[\"avatar\"] = \"x\"" }, restore.Guards);
        Assert.True(restore.DerivesFromDocument);
        Assert.Equal(Text(original), Text(Undo(entry, edit.Current)));
    }

    [Fact]
    public async Task A_removed_field_goes_back_to_its_place_byte_for_byte()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"a\":1,\"legacy\":{\"x\":[1,null,\"ü\"]},\"b\":null}");
        var edit = await EditAsync(original, new RemoveFieldOperation(FieldPath.Parse("legacy")));
        var entry = JournalEntry.FromEdit(edit, Key);

        Assert.False(entry.CanRestoreUnread);
        var change = entry.Changes!.Single();
        Assert.True(change.Removed);
        Assert.Equal(3, change.Index);
        Assert.Equal("a", change.Previous);
        Assert.Equal(Text(original), Text(Undo(entry, edit.Current)));
    }

    [Fact]
    public async Task Several_removals_from_one_object_come_back_in_their_order_whatever_order_they_were_removed_in()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"s\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4},\"first\":0}");
        var edit = await EditAsync(original,
            new RemoveFieldOperation(FieldPath.Parse("s.c")), new RemoveFieldOperation(FieldPath.Parse("s.a")), new RemoveFieldOperation(FieldPath.Parse("s.b")));
        var entry = JournalEntry.FromEdit(edit, Key);
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"s\":{\"d\":4},\"first\":0}", Text(edit.Current));
        Assert.Equal(Text(original), Text(Undo(entry, edit.Current)));
    }

    [Fact]
    public async Task A_move_records_both_fields_and_a_nested_add_records_the_parent_it_created()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"userName\":\"ann\",\"email\":\"a@x\"}");
        var edit = await EditAsync(original,
            new RenameFieldOperation(FieldPath.Parse("userName"), FieldPath.Parse("displayName"), keepSource: false),
            AddFieldOperation.WithValue(FieldPath.Parse("plan.tier"), "free"),
            AddFieldOperation.WithValue(FieldPath.Parse("plan.seats"), 1));
        var entry = JournalEntry.FromEdit(edit, Key);

        // plan.seats lies inside /plan, which the migration created whole: one change covers both.
        Assert.Equal(new[] { "/displayName", "/userName", "/plan" }, entry.Changes!.Select(c => c.Path.ToJsonPointer()));
        Assert.Equal("{\"tier\":\"free\",\"seats\":1}", Text(entry.Changes!.Last().After!));
        Assert.Equal(Text(original), Text(Undo(entry, edit.Current)));
    }

    [Fact]
    public async Task A_transform_keeps_the_whole_document_before_and_a_hash_of_the_document_after()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"a\":[1,2]},\"gone\":true,\"_etag\":\"e1\",\"_ts\":5}");
        var edit = Replaced(original, "{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"a\":[1,2,3],\"b\":1.5}}");
        var entry = JournalEntry.FromEdit(edit, Key);

        Assert.True(entry.IsWhole);
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"a\":[1,2]},\"gone\":true}", Text(entry.Document!));
        // As read back from the service: numbers as it writes them, properties in its order, system properties added.
        var served = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"b\":1.5,\"a\":[1.0,2,3]},\"_etag\":\"e2\",\"_ts\":9}");
        Assert.Equal(RestoreState.Restorable, entry.StateOf(served));
        Assert.Equal(RestoreState.Restored, entry.StateOf(original));
        Assert.Equal(RestoreState.Changed, entry.StateOf(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"b\":1.5,\"a\":[1,2,3]},\"app\":1}")));

        var restore = new DocumentEdit(served);
        entry.PlanRestore(restore, force: false);
        Assert.True(restore.NeedsReplace);
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"n\":{\"a\":[1,2]},\"gone\":true}", Text(DocumentJson.WithoutSystemProperties(restore.Current)));
    }

    [Fact]
    public async Task A_document_is_restorable_restored_or_changed_and_a_conflict_says_which_field()
    {
        var edit = await EditAsync(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"level\":\"high\"}"),
            new ConvertFieldOperation(FieldPath.Parse("level"), FieldPath.Parse("rank"), null, "string", null),
            new RemoveFieldOperation(FieldPath.Parse("level")));
        var entry = JournalEntry.FromEdit(edit, Key);

        Assert.Equal(RestoreState.Restorable, entry.StateOf(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"rank\":\"high\",\"other\":1}")));
        Assert.Equal(RestoreState.Restored, entry.StateOf(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"level\":\"high\"}")));
        var changed = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"rank\":\"low\"}");
        Assert.Equal(RestoreState.Changed, entry.StateOf(changed));
        Assert.Contains("'rank' is \"low\", the migration left it \"high\"", entry.DescribeChange(changed), StringComparison.Ordinal);

        // -Force restores the fields the migration changed, whatever they hold now (a removed field
        // written back since returns to its old place); other fields stay.
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"level\":\"high\",\"app\":2}",
            Text(entry.RestoreOnto(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"rank\":\"low\",\"app\":2}"), force: true)));
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"level\":\"high\",\"app\":2}",
            Text(entry.RestoreOnto(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"rank\":\"high\",\"app\":2,\"level\":\"new\"}"), force: true)));
    }

    [Fact]
    public async Task A_restore_the_service_cannot_check_by_equality_is_planned_on_the_document_read()
    {
        var edit = await EditAsync(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"tags\":[\"a\"]}"), AddFieldOperation.WithCopy(FieldPath.Parse("labels"), FieldPath.Parse("tags")));
        var entry = JournalEntry.FromEdit(edit, Key);
        Assert.False(entry.CanRestoreUnread);

        var restore = new DocumentEdit(edit.Current);
        entry.PlanRestore(restore, force: false);
        Assert.Empty(restore.Guards);
        Assert.True(restore.DerivesFromDocument);
        Assert.Equal(PatchOperationType.Remove, restore.Patch.Single().OperationType);
    }

    [Theory]
    [InlineData("\"it's \\\"q\\\"\"", "\"it\\u0027s \\\"q\\\"\"")]
    [InlineData("true", "true")]
    [InlineData("-42", "-42")]
    [InlineData("0.1", "0.1")]
    [InlineData("1e300", null)]
    [InlineData("null", null)]
    [InlineData("\"\"", "\"\"")]
    [InlineData("{\"a\":1}", null)]
    [InlineData("[1]", null)]
    public void Values_become_sql_literals_only_where_equality_is_exact(string json, string? literal)
    {
        Assert.Equal(literal, SqlEquality.Literal(DocumentJson.Parse(json)));
    }

    [Fact]
    public void A_null_written_by_the_migration_is_checked_with_IS_NULL()
    {
        Assert.Equal("IS_NULL(c[\"a\"][\"b\"])", SqlEquality.Condition(FieldPath.Parse("a.b"), JValue.CreateNull()));
        Assert.Equal("c[\"a\"] = 1", SqlEquality.Condition(FieldPath.Parse("a"), new JValue(1L)));
        Assert.Null(SqlEquality.Condition(FieldPath.Parse("a"), new JArray()));
    }

    [Fact]
    public async Task An_entry_already_in_the_journal_keeps_its_before_image_when_the_document_still_holds_what_that_write_left()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"count\":1}");
        var firstEdit = Replaced(original, "{\"id\":\"d1\",\"pk\":\"p1\",\"count\":2}");
        var first = JournalEntry.FromEdit(firstEdit, Key);

        // A resumed run applies a (non-idempotent) transform again to the document it already changed.
        var again = Replaced(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"count\":2}"), "{\"id\":\"d1\",\"pk\":\"p1\",\"count\":3}");
        var merged = JournalEntry.Merge(first, again, Key);
        Assert.Equal(Text(original), Text(merged.Document!));
        Assert.Equal(RestoreState.Restorable, merged.StateOf(again.Current));

        // The earlier write never happened (the document is as it was, or as the application left it): the new image wins.
        var retry = Replaced(Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"count\":7}"), "{\"id\":\"d1\",\"pk\":\"p1\",\"count\":8}");
        Assert.Equal("{\"id\":\"d1\",\"pk\":\"p1\",\"count\":7}", Text(JournalEntry.Merge(first, retry, Key).Document!));
    }

    [Fact]
    public async Task Field_entries_merge_into_the_union_of_their_fields_with_the_earliest_values_before()
    {
        var original = Doc("{\"id\":\"d1\",\"pk\":\"p1\",\"a\":1,\"b\":2}");
        var firstEdit = await EditAsync(original, new RemoveFieldOperation(FieldPath.Parse("a")));
        var first = JournalEntry.FromEdit(firstEdit, Key);
        var secondEdit = await EditAsync(firstEdit.Current, new SetFieldOperation(FieldPath.Parse("b"), 3), new RemoveFieldOperation(FieldPath.Parse("a")));
        var merged = JournalEntry.Merge(first, secondEdit, Key);

        Assert.Equal(new[] { "/a", "/b" }, merged.Changes!.Select(c => c.Path.ToJsonPointer()));
        Assert.Equal(Text(original), Text(Undo(merged, secondEdit.Current)));
    }

    [Fact]
    public void The_partition_key_of_an_entry_spreads_by_journal_step_and_target_partition()
    {
        var keys = Enumerable.Range(0, 50).Select(i => Scope.PartitionKeyFor(0, new JObject { ["pk"] = $"p{i}" })).ToList();
        Assert.Equal(50, keys.Distinct().Count());
        Assert.All(keys, k => Assert.Equal(32, k.Length));
        Assert.NotEqual(Scope.PartitionKeyFor(0, new JObject { ["pk"] = "p1" }), Scope.PartitionKeyFor(1, new JObject { ["pk"] = "p1" }));
        Assert.NotEqual(Scope.PartitionKeyFor(0, new JObject { ["pk"] = "p1" }), new JournalScope("j2", "m1", "users").PartitionKeyFor(0, new JObject { ["pk"] = "p1" }));
    }
}
