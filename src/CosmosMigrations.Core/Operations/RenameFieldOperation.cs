using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>Renames a field. With <see cref="KeepSource"/> it copies (the expand phase: old readers
/// still find the old field); without, it moves. A target that is already set (by new writers) is
/// never overwritten: a move then only drops the old field.</summary>
internal sealed class RenameFieldOperation : SyncDocumentOperation
{
    private readonly string _targetMissing;
    private readonly string _sourceDefined;

    public RenameFieldOperation(FieldPath from, FieldPath to, bool keepSource)
    {
        From = from.EnsureWritable();
        To = to.EnsureWritable();
        KeepSource = keepSource;
        _sourceDefined = $"IS_DEFINED({From.ToSql()})";
        _targetMissing = $"NOT IS_DEFINED({To.ToSql()})";
        SelectionCondition = keepSource ? $"({_sourceDefined} AND {_targetMissing})" : _sourceDefined;
    }

    public FieldPath From { get; }

    public FieldPath To { get; }

    public bool KeepSource { get; }

    public override string Kind => "RenameField";

    public override string? SelectionCondition { get; }

    public override IEnumerable<FieldPath> Fields => new[] { From, To };

    public override bool RemovesFields => !KeepSource;

    public override string Describe() => KeepSource ? $"copy '{From}' to '{To}' (keep '{From}')" : $"rename '{From}' to '{To}'";

    public override JObject ToCanonical() => new() { ["op"] = Kind, ["field"] = From.Text, ["to"] = To.Text, ["keepSource"] = KeepSource };

    public override void Apply(DocumentEdit edit)
    {
        var source = edit.Get(From);
        if (source is null)
        {
            return;
        }

        if (!edit.IsDefined(To))
        {
            edit.MarkDerived();
            edit.Set(To, source.DeepClone(), _targetMissing);
        }

        if (!KeepSource)
        {
            edit.Remove(From, _sourceDefined);
        }
    }
}
