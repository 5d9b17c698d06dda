using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>Sets a field to a value on every selected document, overwriting (Invoke-Backfill -Set).
/// Which documents is the backfill's filter; unchanged documents are not written.</summary>
internal sealed class SetFieldOperation : SyncDocumentOperation
{
    public SetFieldOperation(FieldPath field, JToken value)
    {
        Field = field.EnsureWritable();
        Value = value;
    }

    public FieldPath Field { get; }

    public JToken Value { get; }

    public override string Kind => "SetField";

    public override string? SelectionCondition => null;

    public override IEnumerable<FieldPath> Fields => new[] { Field };

    public override string Describe() => $"set '{Field}' = {Value.ToString(Newtonsoft.Json.Formatting.None)}";

    public override JObject ToCanonical() => new() { ["op"] = Kind, ["field"] = Field.Text, ["value"] = Value.DeepClone() };

    public override void Apply(DocumentEdit edit) => edit.Set(Field, Value, null);
}
