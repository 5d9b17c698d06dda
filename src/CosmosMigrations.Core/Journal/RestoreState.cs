namespace CosmosMigrations.Journal;

/// <summary>What a restore would find in a document: still what the migration wrote, already what
/// it was before, or something else (changed since: a conflict).</summary>
internal enum RestoreState
{
    Restorable,
    Restored,
    Changed,
}
