using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace CosmosMigrations.Isolation;

/// <summary>The module's own load context. CosmosMigrations.psm1 asks it for the cmdlet assembly
/// (bin/CosmosMigrations.Module.dll) and imports that as a nested module; every assembly the
/// cmdlets need then resolves here first:
/// <list type="bullet">
/// <item>an assembly of the platform, .NET's or PowerShell's own (the trusted platform assemblies,
/// which no other module can replace in the default context), is shared when the platform's
/// version is at least the one asked for, so that PowerShell's and .NET's types stay one type
/// each (System.Management.Automation, System.Text.Json, System.Diagnostics.DiagnosticSource on
/// .NET 10); where a dependency asks for a newer version than the platform has (bin/ holds the
/// 10.0 System.Diagnostics.DiagnosticSource that Microsoft.Extensions 10 asks for, newer than
/// .NET 8's), bin/'s copy loads here;</item>
/// <item>everything else in bin/ (Microsoft.Azure.Cosmos, Azure.Core, Azure.Identity, MSAL,
/// Newtonsoft.Json, System.ClientModel, …) is loaded here, whatever another module loaded into
/// the default context before or after;</item>
/// <item>anything else is left to the default context.</item>
/// </list>
/// Newtonsoft.Json is the module's own even though PowerShell ships one: the Cosmos SDK
/// serializes with it, and the module runs with the version it was tested with.
/// <para>A private assembly loads from bin/&lt;platform&gt;/ (e.g. bin/linux-x64/) when the build
/// put a ReadyToRun image of it there for this operating system and processor, else from bin/
/// (IL, for every platform): an image compiled for another platform does not load at all.</para></summary>
public sealed class ModuleLoadContext : AssemblyLoadContext
{
    /// <summary>The name of the cmdlet assembly in bin/.</summary>
    public const string ModuleAssemblyName = "CosmosMigrations.Module";

    private static readonly Dictionary<string, ModuleLoadContext> Contexts = new(StringComparer.Ordinal);
    private static readonly HashSet<string> Private = new(StringComparer.OrdinalIgnoreCase) { "Newtonsoft.Json" };
    private static readonly Lazy<Dictionary<string, string>> PlatformAssemblies = new(ReadPlatformAssemblies);

    private readonly string _binPath;
    private readonly string? _nativePath;

    private ModuleLoadContext(string binPath)
        : base("CosmosMigrations", isCollectible: false)
    {
        _binPath = binPath;
        _nativePath = PlatformFolder is { } platform ? Path.Combine(binPath, platform) : null;
        ModuleAssembly = LoadFromAssemblyPath(Path.Combine(binPath, ModuleAssemblyName + ".dll"));
    }

    /// <summary>The cmdlet assembly, loaded in this context.</summary>
    public Assembly ModuleAssembly { get; }

    /// <summary>The cmdlet assembly of the module installed at <paramref name="moduleBase"/>,
    /// loaded (once per process and folder) in that module's own context.</summary>
    public static Assembly Initialize(string moduleBase)
    {
        ArgumentException.ThrowIfNullOrEmpty(moduleBase);
        var bin = Path.GetFullPath(Path.Combine(moduleBase, "bin"));

        // Under a lock, not GetOrAdd: two runspaces importing at once must not both create one.
        lock (Contexts)
        {
            if (!Contexts.TryGetValue(bin, out var context))
            {
                context = new ModuleLoadContext(bin);
                Contexts.Add(bin, context);
            }

            return context.ModuleAssembly;
        }
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        var name = assemblyName.Name;
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }

        if (!string.IsNullOrEmpty(assemblyName.CultureName) && !string.Equals(assemblyName.CultureName, "neutral", StringComparison.OrdinalIgnoreCase))
        {
            var satellite = Path.Combine(_binPath, assemblyName.CultureName, name + ".dll");
            return File.Exists(satellite) ? LoadFromAssemblyPath(satellite) : null;
        }

        var path = Path.Combine(_binPath, name + ".dll");
        if (!File.Exists(path) || IsSharedWithPlatform(name, assemblyName.Version))
        {
            return null;
        }

        var native = _nativePath is null ? null : Path.Combine(_nativePath, name + ".dll");
        return LoadFromAssemblyPath(native is not null && File.Exists(native) ? native : path);
    }

    /// <summary>The folder in bin/ of this platform's ReadyToRun images (build.ps1 -ReadyToRun),
    /// named by its portable runtime identifier; null on a platform the build never targets.</summary>
    public static string? PlatformFolder { get; } = FindPlatformFolder();

    private static string? FindPlatformFolder()
    {
        var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : OperatingSystem.IsLinux() ? "linux" : null;
        var arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            _ => null,
        };
        return os is null || arch is null ? null : os + "-" + arch;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        // The Cosmos SDK's Windows-only native pieces (ServiceInterop, CRTCompat) sit in bin/.
        foreach (var candidate in new[] { unmanagedDllName, unmanagedDllName + ".dll", "lib" + unmanagedDllName + ".so", "lib" + unmanagedDllName + ".dylib" })
        {
            var path = Path.Combine(_binPath, candidate);
            if (File.Exists(path))
            {
                return LoadUnmanagedDllFromPath(path);
            }
        }

        return IntPtr.Zero;
    }

    private static bool IsSharedWithPlatform(string name, Version? requested)
    {
        if (Private.Contains(name) || !PlatformAssemblies.Value.TryGetValue(name, out var platformPath))
        {
            return false;
        }

        if (requested is null)
        {
            return true;
        }

        try
        {
            return AssemblyName.GetAssemblyName(platformPath).Version is { } platform && platform >= requested;
        }
        catch (Exception ex) when (ex is IOException or BadImageFormatException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static Dictionary<string, string> ReadPlatformAssemblies()
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string list)
        {
            foreach (var path in list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                result.TryAdd(Path.GetFileNameWithoutExtension(path), path);
            }
        }

        return result;
    }
}
