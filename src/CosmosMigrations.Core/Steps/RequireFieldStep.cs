using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Operations;

namespace CosmosMigrations.Steps;

/// <summary>The gate: the migration fails (saying how many documents, and which) unless every
/// document has the field, of the type. It changes nothing.</summary>
internal sealed class RequireFieldStep : MigrationStep, IContainerStep
{
    public RequireFieldStep(FieldPath field, string type)
    {
        Field = field;
        Type = type;
    }

    public FieldPath Field { get; }

    public string Type { get; }

    public override string Describe() => $"require '{Field}'" + (Type == "any" ? "" : $" as {Type}");

    public override JToken ToCanonical() => new JObject { ["op"] = "RequireField", ["field"] = Field.Text, ["type"] = Type };

    public async Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken)
    {
        var result = await ConformanceChecker.CheckAsync(context.Target, Field, Type, 5, cancellationToken).ConfigureAwait(false);
        if (!result.Conforms)
        {
            throw new MigrationException(MigrationErrorKind.RequirementNotMet, "RequirementNotMet",
                $"{result.NonConforming} document(s) of '{context.Target.Name}' do not have '{Field}'{(Type == "any" ? "" : " as a " + Type)} (e.g. {string.Join(", ", result.SampleIds)}).",
                Field.Text,
                "Backfill those documents first (an earlier AddField / ConvertField, or Invoke-Backfill), check with Test-SchemaConformance, then start this migration again.");
        }

        context.Log?.Invoke($"Every document of '{context.Target.Name}' has '{Field}'{(Type == "any" ? "" : " as a " + Type)}.");
    }

    public async Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken)
    {
        var result = await ConformanceChecker.CheckAsync(target, Field, Type, 5, cancellationToken).ConfigureAwait(false);
        return result.Conforms
            ? $"{Describe()}: every document conforms now."
            : $"{Describe()}: {result.NonConforming} document(s) do not conform now (e.g. {string.Join(", ", result.SampleIds)}); earlier steps may fix them.";
    }
}
