using CosmosMigrations.Documents;

namespace CosmosMigrations.Operations;

/// <summary>Adds a field where it is not defined: a constant, a template over the document's
/// fields, or a copy of another field. A field that is already there is never overwritten.</summary>
internal sealed class AddFieldOperation : SyncDocumentOperation
{
    private readonly string _guard;

    private AddFieldOperation(FieldPath field, JToken? value, FieldTemplate? template, FieldPath? copyFrom)
    {
        Field = field.EnsureWritable();
        Value = value;
        Template = template;
        CopyFrom = copyFrom;
        _guard = $"NOT IS_DEFINED({Field.ToSql()})";
        SelectionCondition = copyFrom is null ? _guard : $"({_guard} AND IS_DEFINED({copyFrom.ToSql()}))";
    }

    public static AddFieldOperation WithValue(FieldPath field, JToken value) => new(field, value, null, null);

    public static AddFieldOperation WithTemplate(FieldPath field, FieldTemplate template) => new(field, null, template, null);

    public static AddFieldOperation WithCopy(FieldPath field, FieldPath source) => new(field, null, null, source);

    public FieldPath Field { get; }

    public JToken? Value { get; }

    public FieldTemplate? Template { get; }

    public FieldPath? CopyFrom { get; }

    public override string Kind => "AddField";

    public override string? SelectionCondition { get; }

    public override IEnumerable<FieldPath> Fields =>
        new[] { Field }.Concat(CopyFrom is null ? Enumerable.Empty<FieldPath>() : new[] { CopyFrom }).Concat(Template?.Fields ?? Enumerable.Empty<FieldPath>());

    public override string Describe() =>
        Template is not null ? $"add '{Field}' from template '{Template}'"
        : CopyFrom is not null ? $"add '{Field}' as a copy of '{CopyFrom}'"
        : $"add '{Field}' = {Value!.ToString(Newtonsoft.Json.Formatting.None)}";

    public override JObject ToCanonical() => new()
    {
        ["op"] = Kind,
        ["field"] = Field.Text,
        ["value"] = Value?.DeepClone(),
        ["template"] = Template?.Text,
        ["copyFrom"] = CopyFrom?.Text,
    };

    public override void Apply(DocumentEdit edit)
    {
        if (edit.IsDefined(Field))
        {
            return;
        }

        if (Value is not null)
        {
            edit.Set(Field, Value, _guard);
            return;
        }

        if (CopyFrom is not null)
        {
            var source = edit.Get(CopyFrom);
            if (source is null)
            {
                return;
            }

            edit.MarkDerived();
            edit.Set(Field, source.DeepClone(), _guard);
            return;
        }

        edit.MarkDerived();
        edit.Set(Field, Template!.Render(edit.Current), _guard);
    }
}
