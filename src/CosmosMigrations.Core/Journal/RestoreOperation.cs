using CosmosMigrations.Operations;

namespace CosmosMigrations.Journal;

/// <summary>Puts one document back as its journal entry says it was. A document that still holds
/// what the migration wrote is restored; one that already holds what was there before is left
/// (restored already: a resumed undo never writes twice); any other is a conflict, left alone,
/// unless <see cref="Force"/>. A document deleted since is a conflict too; with <see cref="Force"/>
/// it is left deleted (a restore never creates a document) and its entry dropped.</summary>
internal sealed class RestoreOperation : SyncDocumentOperation
{
    public RestoreOperation(JournalEntry entry, bool force)
    {
        Entry = entry;
        Force = force;
    }

    public JournalEntry Entry { get; }

    public bool Force { get; }

    public override string Kind => "Restore";

    public override string? SelectionCondition => null;

    public override bool DeletedIsConflict => !Force;

    public override string Describe() => "restore from the journal";

    public override JObject ToCanonical() => new() { ["op"] = Kind };

    public override void Apply(DocumentEdit edit)
    {
        switch (Entry.StateOf(edit.Current))
        {
            case RestoreState.Restored:
                return;
            case RestoreState.Changed when !Force:
                throw new DocumentConflictException(Entry.DescribeChange(edit.Current));
            default:
                Entry.PlanRestore(edit, Force);
                return;
        }
    }
}
