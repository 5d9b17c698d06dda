using System.Management.Automation.Language;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>The script-block bridge: a PowerShell script block (a -ScriptBlock backfill, an inline or
/// file transform) made a transform the Core can call from any thread, without a reference to
/// PowerShell in the Core.</summary>
internal static class ScriptBlockBridge
{
    /// <summary>Each call runs on the pipeline thread (<paramref name="invokeOnPipeline"/>) with the
    /// document as an ordered hashtable; what it returns (the last hashtable or object) is the
    /// document, $null leaves it, anything else is a document operation's error.</summary>
    internal static TransformFunction Transform(ScriptBlock scriptBlock, string name, string source, Func<Func<JObject?>, CancellationToken, Task<JObject?>> invokeOnPipeline)
    {
        var transform = InThisRunspace(scriptBlock);
        return new(name, source, (document, ct) => invokeOnPipeline(() =>
        {
            var output = transform.Invoke(PlainJson.ToPlain(document));
            object? result = null;
            foreach (var item in output)
            {
                var value = item?.BaseObject;
                if (value is System.Collections.IDictionary || value is PSCustomObject)
                {
                    result = item;
                }
            }

            if (result is null)
            {
                if (output.Any(o => o is not null))
                {
                    throw new DocumentOperationException($"the transform returned {output.First(o => o is not null)!.BaseObject.GetType().Name}, not a document (return the hashtable, or $null to leave the document)");
                }

                return null;
            }

            return PlainJson.FromObject(PowerShellValues.Unwrap(result), "transform result") as JObject;
        }, ct));
    }

    /// <summary>A script block stays tied to the runspace it was created in: invoked from another
    /// (a thread job or runspace that received it as an argument), every call is marshalled back
    /// to that runspace and waits until it is idle (measured: ~250 ms a document while it sat in
    /// Wait-Job), and concurrent use can crash PowerShell (PowerShell issue 24629). A copy made
    /// from its syntax tree is tied to no runspace and runs in this one, with the same code and
    /// positions for errors. One that belongs to a module keeps that module's scope as it is.</summary>
    internal static ScriptBlock InThisRunspace(ScriptBlock scriptBlock) =>
        scriptBlock.Module is null && scriptBlock.Ast is ScriptBlockAst ast ? ast.GetScriptBlock() : scriptBlock;
}
