using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>Removes a field where it is defined (the contract step, once no reader needs it).</summary>
internal sealed class RemoveFieldOperation : SyncDocumentOperation
{
    public RemoveFieldOperation(FieldPath field)
    {
        Field = field.EnsureWritable();
        SelectionCondition = $"IS_DEFINED({Field.ToSql()})";
    }

    public FieldPath Field { get; }

    public override string Kind => "RemoveField";

    public override string? SelectionCondition { get; }

    public override IEnumerable<FieldPath> Fields => new[] { Field };

    public override bool RemovesFields => true;

    public override string Describe() => $"remove '{Field}'";

    public override JObject ToCanonical() => new() { ["op"] = Kind, ["field"] = Field.Text };

    public override void Apply(DocumentEdit edit) => edit.Remove(Field, SelectionCondition);
}
