using System.Reflection;
using System.Runtime.CompilerServices;
using CosmosMigrations.Running;

namespace CosmosMigrations.Tests.Unit;

/// <summary>
/// The Core's public types are what users see, and nothing else: everything the engine is made of
/// is internal, open to the cmdlets and the test assemblies through InternalsVisibleTo. A new
/// public type fails here until it is made internal or added below with why users need it, so the
/// surface cannot grow back silently (docs/architecture.md, "What is public").
/// </summary>
public sealed class PublicSurfaceTests
{
    private static readonly Assembly Core = typeof(MigrationRunner).Assembly;

    /// <summary>Every public type of the Core, by full name, with why it is public.</summary>
    private static readonly Dictionary<string, string> Allowed = new(StringComparer.Ordinal)
    {
        // What the cmdlets emit: their full names are the output types that the format views
        // (module/CosmosMigrations.Format.ps1xml), the help (docs/commands) and users' scripts
        // (PSTypeNames) name; PowerShell shows only the public members of a public type.
        ["CosmosMigrations.MigrationStatus"] = "output of Get-MigrationStatus, Start-/Stop-/Reset-/Undo-SchemaMigration, Invoke-Backfill, the container moves",
        ["CosmosMigrations.MigrationPreview"] = "output of -WhatIf runs (Start-SchemaMigration, Invoke-Backfill, Undo-SchemaMigration)",
        ["CosmosMigrations.MigrationFailure"] = "output of Get-MigrationFailure",
        ["CosmosMigrations.Moving.MovePreflight"] = "output of Test-ContainerMove and Start-ContainerMove -WhatIf",
        ["CosmosMigrations.Operations.ConformanceResult"] = "output of Test-SchemaConformance",
        ["CosmosMigrations.Connection.MigrationConnection"] = "output of Connect-CosmosMigration -PassThru and the type of every cmdlet's -Context",

        // What the output types' public properties hold.
        ["CosmosMigrations.WorkerStatus"] = "MigrationStatus.Workers",
        ["CosmosMigrations.FailedByClass"] = "MigrationStatus.FailedByClass",
        ["CosmosMigrations.FailureRecord"] = "MigrationStatus.Failures, MigrationPreview.Failures",
        ["CosmosMigrations.PreviewSample"] = "MigrationPreview.Samples",
        ["CosmosMigrations.Moving.MoveKeyLoad"] = "MovePreflight.LargestKeys",
        ["CosmosMigrations.Moving.MoveSetting"] = "MovePreflight.Settings",
        ["CosmosMigrations.Errors.FailureClass"] = "MigrationFailure.Class, and the type of Get-MigrationFailure -Class",

        // What an error carries: the Exception of every ErrorRecord the cmdlets write, with the
        // service's diagnostics (status, substatus, activity id, RU) that only its properties hold.
        ["CosmosMigrations.Errors.MigrationException"] = "ErrorRecord.Exception of every error the cmdlets write",
        ["CosmosMigrations.Errors.MigrationErrorKind"] = "MigrationException.Kind",
    };

    /// <summary>Who may see the Core's internals: the cmdlets (the one shipped assembly) and test
    /// assemblies from tests/, none of which ships.</summary>
    private static readonly Dictionary<string, string> AllowedFriends = new(StringComparer.Ordinal)
    {
        ["CosmosMigrations.Module"] = "the cmdlets (src/CosmosMigrations.PowerShell)",
        ["CosmosMigrations.Core.Tests"] = "the engine's xunit tests",
        ["CosmosMigrations.TestFixtures"] = "the xunit suites' shared server (CosmosTestServer.Settings)",
        ["CosmosMigrations.Net8Engine"] = "the engine's run on .NET 8 (tests/Pester/Net8.Tests.ps1)",
    };

    [Fact]
    public void Every_public_type_is_one_users_see()
    {
        var unexpected = Core.GetExportedTypes()
            .Select(t => t.FullName!)
            .Where(name => !Allowed.ContainsKey(name))
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(unexpected.Count == 0,
            "Public types of the Core that users do not see (make them internal; the cmdlets and the tests reach internals "
            + "through InternalsVisibleTo), or add them to the allowed list with why users need them:\n"
            + string.Join("\n", unexpected));
    }

    [Fact]
    public void Every_allowed_type_is_still_public()
    {
        var exported = Core.GetExportedTypes().Select(t => t.FullName!).ToHashSet(StringComparer.Ordinal);
        var stale = Allowed.Keys.Where(name => !exported.Contains(name)).Order(StringComparer.Ordinal).ToList();
        Assert.True(stale.Count == 0,
            "Allowed public types that are gone or internal now (drop them from the list):\n" + string.Join("\n", stale));
    }

    [Fact]
    public void Only_the_cmdlets_and_test_assemblies_see_the_internals()
    {
        var friends = Core.GetCustomAttributes<InternalsVisibleToAttribute>()
            .Select(a => a.AssemblyName)
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(AllowedFriends.Keys.Order(StringComparer.Ordinal), friends);
    }
}
