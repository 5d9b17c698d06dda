using System;
using System.Collections;
using System.Linq;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Running;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Net8Engine;

/// <summary>One migration through the Core engine, as Start-SchemaMigration -Operation runs it: an
/// AddField over a container, with the engine's defaults.</summary>
public static class EngineRun
{
    public static async Task<string> RunAsync(string endpoint, string key, string database, string container, string migration)
    {
        var settings = new ConnectionSettings { Endpoint = endpoint, Database = database, SkipCertificateCheck = true };
        settings.SetKey(key);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        using var connection = await MigrationConnection.OpenAsync(settings, _ => true, timeout.Token).ConfigureAwait(false);
        await connection.EnsureTrackingContainerAsync(timeout.Token).ConfigureAwait(false);
        var definition = new DefinitionParser().ParseInline(migration, container, null,
            new object?[] { new Hashtable { ["AddField"] = "net8", ["Value"] = true } });
        var result = await new MigrationRunner(connection).RunAsync(definition, new RunOptions(), null, timeout.Token).ConfigureAwait(false);

        // Where each assembly of the run came from: the module's context or the platform's.
        static JObject Origin(Type type) => new()
        {
            ["context"] = AssemblyLoadContext.GetLoadContext(type.Assembly)?.Name,
            ["location"] = type.Assembly.Location,
        };
        return new JObject
        {
            ["framework"] = RuntimeInformation.FrameworkDescription,
            ["runtimeDirectory"] = RuntimeEnvironment.GetRuntimeDirectory(),
            ["status"] = result.Status.Status,
            ["processed"] = result.Status.Processed,
            ["error"] = result.Error?.Message,
            ["core"] = Origin(typeof(MigrationRunner)),
            ["sdk"] = Origin(typeof(Microsoft.Azure.Cosmos.CosmosClient)),
            ["newtonsoft"] = Origin(typeof(JObject)),
            ["loaded"] = new JArray(AssemblyLoadContext.GetLoadContext(typeof(EngineRun).Assembly)!.Assemblies
                .Select(a => a.GetName().Name).OrderBy(n => n, StringComparer.Ordinal)),
        }.ToString(Newtonsoft.Json.Formatting.None);
    }
}
