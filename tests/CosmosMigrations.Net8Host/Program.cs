using System;
using System.IO;
using System.Reflection;
using System.Runtime.Loader;
using System.Threading.Tasks;

// Usage: CosmosMigrations.Net8Host <module folder> <engine dll> <endpoint> <key> <database> <container> <migration>
// Loads the module's entry assembly (output/CosmosMigrations/CosmosMigrations.dll) as PowerShell
// would, opens the module's load context over bin/, loads the engine driver into that context and
// runs it; prints one JSON line.
if (args.Length != 7)
{
    Console.Error.WriteLine("usage: <module folder> <engine dll> <endpoint> <key> <database> <container> <migration>");
    return 2;
}

var moduleBase = Path.GetFullPath(args[0]);
var entry = Assembly.LoadFrom(Path.Combine(moduleBase, "CosmosMigrations.dll"));
var cmdlets = (Assembly)entry.GetType("CosmosMigrations.Isolation.ModuleLoadContext", throwOnError: true)!
    .GetMethod("Initialize", BindingFlags.Public | BindingFlags.Static)!
    .Invoke(null, new object[] { moduleBase })!;
var context = AssemblyLoadContext.GetLoadContext(cmdlets)!;
var engine = context.LoadFromAssemblyPath(Path.GetFullPath(args[1]));
var run = engine.GetType("CosmosMigrations.Net8Engine.EngineRun", throwOnError: true)!
    .GetMethod("RunAsync", BindingFlags.Public | BindingFlags.Static)!;
var json = await (Task<string>)run.Invoke(null, new object[] { args[2], args[3], args[4], args[5], args[6] })!;
Console.WriteLine(json);
return 0;
