using System.Collections;
using CosmosMigrations.Definitions;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>Migration definitions that tests build inline, as Start-SchemaMigration -Operation does.</summary>
internal static class TestDefinitions
{
    public static MigrationDefinition AddField(string name, string container, string field, object value) =>
        new DefinitionParser().ParseInline(name, container, null, new object?[] { new Hashtable { ["AddField"] = field, ["Value"] = value } });

    /// <summary>Adds flag = true (the fakes' ranged container selects the documents that lack it: <see cref="LacksFlag"/>).</summary>
    public static MigrationDefinition AddFlag(string name, string container) => AddField(name, container, "flag", true);

    /// <summary>What <see cref="AddFlag"/>'s scan selects: the documents without the flag.</summary>
    public static bool LacksFlag(JObject document) => document["flag"] is null;
}
