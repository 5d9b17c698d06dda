using CosmosMigrations.Running;
using CosmosMigrations.Tests.Infrastructure;

namespace CosmosMigrations.Tests.Unit;

/// <summary>
/// The Core's folders are layers: a folder uses only the folders below it, in the order of
/// docs/architecture.md's tree. Read from the compiled assembly (signatures and method bodies),
/// so a fully qualified name or a type of the root namespace counts as much as a <c>using</c>.
/// </summary>
public sealed class ArchitectureTests
{
    private const string Root = "CosmosMigrations";

    /// <summary>
    /// Top to bottom. <c>Results</c> is the root namespace <c>CosmosMigrations</c>: its types' full
    /// names (<c>CosmosMigrations.MigrationStatus</c>, …) are the output types that the format views,
    /// the help and users' scripts name, so they keep it.
    /// </summary>
    private static readonly string[] Layers =
    [
        "Moving",
        "Distributed",
        "Running",
        "Results",
        "Failures",
        "Tracking",
        "Definitions",
        "Steps",
        "Journal",
        "Scanning",
        "Operations",
        "Connection",
        "Requests",
        "Documents",
        "Errors",
    ];

    /// <summary>
    /// The uses of a folder above that are still there, each with why. A change may remove one
    /// (the test then says so); a new one is a type in the wrong folder.
    /// </summary>
    private static readonly Dictionary<(string From, string To), string> KnownUpward = new()
    {
        [("Running", "Distributed")] = "MigrationRunner, the facade, hands -Distributed to DistributedRun and deletes its ProcessorLeases",
    };

    private static readonly IReadOnlyList<NamespaceGraph.Edge> Edges =
        NamespaceGraph.Read(typeof(MigrationRunner).Assembly.Location, Root);

    [Fact]
    public void Every_folder_uses_only_the_folders_below_it()
    {
        var upward = Edges
            .Where(e => Rank(e.From) > Rank(e.To) && !KnownUpward.ContainsKey((Folder(e.From), Folder(e.To))))
            .Select(e => $"{Folder(e.From)} → {Folder(e.To)}: {string.Join(", ", e.Uses)}")
            .ToList();
        Assert.True(upward.Count == 0,
            "A folder uses one above it (move the type to the folder it belongs to):\n" + string.Join("\n", upward));
    }

    [Fact]
    public void Every_namespace_of_the_Core_has_its_layer()
    {
        var namespaces = NamespaceGraph.Namespaces(typeof(MigrationRunner).Assembly.Location, Root);
        var missing = namespaces.Where(ns => !Layers.Contains(Folder(ns))).Order().ToList();
        Assert.True(missing.Count == 0, "Namespaces without a layer: " + string.Join(", ", missing));
        // Every layer is a namespace that exists: a folder renamed or emptied leaves no stale name.
        Assert.Equal(Layers.Order(), namespaces.Select(Folder).Distinct().Order());
    }

    [Fact]
    public void Every_known_exception_still_exists_and_points_up()
    {
        var stale = KnownUpward
            .Where(known => Array.IndexOf(Layers, known.Key.From) <= Array.IndexOf(Layers, known.Key.To)
                || !Edges.Any(e => Folder(e.From) == known.Key.From && Folder(e.To) == known.Key.To))
            .Select(known => $"{known.Key.From} → {known.Key.To} ({known.Value})")
            .ToList();
        Assert.True(stale.Count == 0,
            "Known exceptions that no longer point up or no longer exist (drop them):\n" + string.Join("\n", stale));
    }

    /// <summary>A namespace's folder: the root namespace is Results/.</summary>
    private static string Folder(string ns) =>
        ns == Root ? "Results" : ns[(Root.Length + 1)..].Split('.')[0];

    private static int Rank(string ns)
    {
        var rank = Array.IndexOf(Layers, Folder(ns));
        Assert.True(rank >= 0, $"{ns} has no layer.");
        return rank;
    }
}
