using System.Globalization;
using CosmosMigrations.Journal;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Steps;

/// <summary>An undo's document step: reads the journal entries of one step of the migration (in
/// the journal container, range by range) and restores the documents they name
/// (<see cref="JournalRestorer"/>).</summary>
public sealed class RestorePass : ScanStep
{
    private readonly JournalStore _journal;

    public RestorePass(JournalStore journal, int step, bool force)
    {
        _journal = journal;
        Step = step;
        Force = force;
    }

    /// <summary>The step of the migration whose changes this pass undoes (0-based).</summary>
    public int Step { get; }

    /// <summary>Restore documents changed since the migration too.</summary>
    public bool Force { get; }

    public override string? ScanCondition => _journal.Scope.Condition(Step);

    /// <summary>Entries only disappear during an undo: a single scan sees them all.</summary>
    public override bool CanCatchUp => false;

    public override string Describe() =>
        $"restore the documents that step {(Step + 1).ToString(CultureInfo.InvariantCulture)} changed, from the journal{(Force ? " (-Force)" : "")}";

    public override JToken ToCanonical() => new JObject { ["op"] = "Restore", ["step"] = Step };

    internal override ScanPlan Plan(ScanContext context) =>
        new(_journal.Container, $"SELECT * FROM c WHERE {ScanCondition}", new JournalRestorer(context.Target, _journal, context.Sender, Force));
}
