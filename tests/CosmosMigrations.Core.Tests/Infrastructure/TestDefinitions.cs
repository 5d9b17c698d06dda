using System.Collections;
using CosmosMigrations.Definitions;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>Migration definitions that tests build inline, as Start-SchemaMigration -Operation does.</summary>
internal static class TestDefinitions
{
    public static MigrationDefinition AddField(string name, string container, string field, object value) =>
        new DefinitionParser().ParseInline(name, container, null, new object?[] { new Hashtable { ["AddField"] = field, ["Value"] = value } });
}
