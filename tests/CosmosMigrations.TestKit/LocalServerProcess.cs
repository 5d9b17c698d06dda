using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;

namespace CosmosMigrations.TestKit;

/// <summary>The one way the local server (tests/LocalCosmos/server.js) is started: by the build's
/// tasks (tools/LocalCosmos.psm1), which leave it running, and by the xunit fixture, whose server
/// goes with the test host.</summary>
public static class LocalServerProcess
{
    // Through sh, which closes every descriptor above stderr before node starts: a server keeps
    // whatever it inherits for its whole life, and an inherited lock (`flock … dotnet test`) or
    // pipe (`… | tail`) held by it hangs everyone waiting on them.
    private const string CloseInheritedDescriptors =
        "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && [ \"$n\" -lt 10 ] && eval \"exec $n>&-\"; done; ";

    /// <summary>Starts a server that outlives the caller: port 8081, or a free one when that is taken,
    /// its endpoint and pid in <paramref name="stateFile"/>, its output in <paramref name="logFile"/>.
    /// It writes its own log: a caller that pumped its output would, once gone, leave a broken pipe
    /// that kills the server at its next line.</summary>
    public static Process StartDetached(string serverScript, int partitions, string stateFile, string logFile)
    {
        var arguments = new[] { serverScript, "--port", "8081", "--port-fallback", "--partitions", $"{partitions}", "--state-file", stateFile, "--log-file", logFile };
        if (OperatingSystem.IsWindows())
        {
            var start = new ProcessStartInfo("node") { UseShellExecute = true };
            Add(start, arguments);
            return Process.Start(start)!;
        }

        return Process.Start(ThroughShell("exec node \"$@\" </dev/null >/dev/null 2>&1", arguments, redirect: false))!;
    }

    /// <summary>Starts a server on a free port that stops with the caller (its standard input is a
    /// pipe from this process: --exit-with-stdin, even if this process is killed; and a kill on
    /// exit); answers it and the endpoint it printed.</summary>
    public static async Task<(Process Process, string Endpoint)> StartAttachedAsync(string serverScript, int partitions)
    {
        var arguments = new[] { serverScript, "--port", "0", "--partitions", $"{partitions}", "--exit-with-stdin" };
        ProcessStartInfo start;
        if (OperatingSystem.IsWindows())
        {
            start = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            Add(start, arguments);
        }
        else
        {
            start = ThroughShell("exec node \"$@\"", arguments, redirect: true);
        }

        var process = Process.Start(start)!;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }
        };
        var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _ = process.StandardError.ReadToEndAsync();
        using var state = System.Text.Json.JsonDocument.Parse(line ?? throw new InvalidOperationException("The local server printed nothing."));
        return (process, state.RootElement.GetProperty("endpoint").GetString()!);
    }

    /// <summary>The repository's server script, found from <paramref name="from"/> upwards (the
    /// folder that holds Cmdlets.sln); throws when its packages are not installed.</summary>
    public static string FindServerScript(string from)
    {
        var dir = new DirectoryInfo(from);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Cmdlets.sln")))
        {
            dir = dir.Parent;
        }

        var folder = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (Cmdlets.sln)."), "tests", "LocalCosmos");
        if (!Directory.Exists(Path.Combine(folder, "node_modules")))
        {
            throw new InvalidOperationException("The local Cosmos DB server is not installed: run 'npm ci' in tests/LocalCosmos, or use build.ps1 -Task Test.");
        }

        return Path.Combine(folder, "server.js");
    }

    private static ProcessStartInfo ThroughShell(string command, IEnumerable<string> arguments, bool redirect)
    {
        var start = new ProcessStartInfo("sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = redirect,
            RedirectStandardOutput = redirect,
            RedirectStandardError = redirect,
        };
        Add(start, new[] { "-c", CloseInheritedDescriptors + command, "sh" });
        Add(start, arguments);
        return start;
    }

    private static void Add(ProcessStartInfo start, IEnumerable<string> arguments)
    {
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
    }
}
