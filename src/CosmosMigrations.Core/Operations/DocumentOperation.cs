using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>One change applied to every document of a pass. Operations are idempotent: applied to
/// a document that already has the change, they change nothing.</summary>
internal abstract class DocumentOperation
{
    /// <summary>The operation's name as written in a migration (AddField, RemoveField, …).</summary>
    public abstract string Kind { get; }

    /// <summary>A Cosmos SQL condition over <c>c</c> that selects the documents this operation would
    /// change, or null when only the document itself can tell (then the pass reads every document).</summary>
    public abstract string? SelectionCondition { get; }

    /// <summary>The fields this operation reads or writes, so that a scan can fetch only those
    /// (with the id, ETag and partition key) instead of whole documents; null when it needs the
    /// whole document (a transform).</summary>
    public virtual IEnumerable<FieldPath>? Fields => null;

    /// <summary>Whether this operation takes fields out of a document (a journal then needs the
    /// whole document, to know where each field was).</summary>
    public virtual bool RemovesFields => false;

    /// <summary>Whether a document deleted since it was read is a conflict (an undo's restore) rather
    /// than simply nothing left to change.</summary>
    public virtual bool DeletedIsConflict => false;

    /// <summary>One line for -WhatIf, progress and errors.</summary>
    public abstract string Describe();

    /// <summary>The definition in a canonical form, for the checksum.</summary>
    public abstract JObject ToCanonical();

    public abstract Task ApplyAsync(DocumentEdit edit, CancellationToken cancellationToken);

    public override string ToString() => Describe();
}

/// <summary>Base for operations that need no I/O.</summary>
internal abstract class SyncDocumentOperation : DocumentOperation
{
    public sealed override Task ApplyAsync(DocumentEdit edit, CancellationToken cancellationToken)
    {
        Apply(edit);
        return Task.CompletedTask;
    }

    public abstract void Apply(DocumentEdit edit);
}
