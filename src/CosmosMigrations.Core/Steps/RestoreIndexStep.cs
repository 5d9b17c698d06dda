using CosmosMigrations.Connection;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Steps;

/// <summary>An undo's index step: puts back the indexing policy an AddIndex step replaced, if the
/// container still has the policy that step left (else a conflict, left alone unless
/// <see cref="Force"/>), conditioned on the container's ETag; then waits for the transformation.</summary>
internal sealed class RestoreIndexStep : MigrationStep, IContainerStep
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(30);

    public RestoreIndexStep(IndexImage image, bool force)
    {
        Image = image;
        Force = force;
    }

    public IndexImage Image { get; }

    public bool Force { get; }

    public override string Describe() =>
        $"restore the indexing policy that step {(Image.Step + 1).ToString(CultureInfo.InvariantCulture)} replaced{(Force ? " (-Force)" : "")}";

    public override JToken ToCanonical() => new JObject { ["op"] = "RestoreIndex", ["step"] = Image.Step };

    public async Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken)
    {
        var restored = await IndexPolicies.ChangeAsync(context.Target.Container, async (properties, ct) =>
        {
            switch (StateOf(properties.IndexingPolicy))
            {
                case "restored":
                    context.Log?.Invoke($"{Describe()}: the policy is already the one before the migration.");
                    return false;
                case "changed" when !Force:
                    context.Log?.Invoke($"{Describe()}: the policy changed since the migration; left alone (-Force restores it).");
                    if (context.ReportConflict is { } report)
                    {
                        await report($"(indexing policy of '{context.Target.Name}', step {Image.Step + 1})", ct).ConfigureAwait(false);
                    }

                    return false;
            }

            properties.IndexingPolicy = IndexPolicies.FromJson(Image.Before);
            return true;
        }, null, cancellationToken).ConfigureAwait(false);
        if (restored is null)
        {
            return;
        }

        context.Log?.Invoke($"{Describe()}: indexing policy restored.");
        await IndexPolicies.WaitForTransformationAsync(context, Describe(), Timeout, cancellationToken).ConfigureAwait(false);
    }

    public async Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken)
    {
        var properties = (await target.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        return StateOf(properties.IndexingPolicy) switch
        {
            "restored" => $"{Describe()}: already restored, nothing to change.",
            "changed" when !Force => $"{Describe()}: the policy changed since the migration: a conflict, left alone (-Force restores it).",
            _ => $"{Describe()}: would restore the policy before the migration.",
        };
    }

    private string StateOf(IndexingPolicy policy)
    {
        var current = IndexPolicies.ToJson(policy);
        return JToken.DeepEquals(current, Image.Before) ? "restored"
            : Image.After is not null && JToken.DeepEquals(current, Image.After) ? "restorable"
            : "changed";
    }
}
