using System.Collections.ObjectModel;
using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Steps;

/// <summary>Adds an index before any query uses it: a composite index (<c>@('status ASC',
/// 'publishedAt DESC')</c>) or an included path (<c>'/status/?'</c> or <c>'status'</c>). It adds
/// only what is missing, replaces the policy conditioned on its ETag, then waits until the
/// service reports the index transformation at 100 %.</summary>
internal sealed class AddIndexStep : MigrationStep, IContainerStep
{
    /// <summary>A composite index (two or more paths, in order) or one included path
    /// (<c>/status/?</c>); <paramref name="timeout"/> bounds the wait for the transformation.</summary>
    public AddIndexStep(IReadOnlyList<CompositePath>? composite, string? includedPath, TimeSpan timeout)
    {
        Composite = composite;
        IncludedPath = includedPath;
        Timeout = timeout;
    }

    public IReadOnlyList<CompositePath>? Composite { get; }

    public string? IncludedPath { get; }

    public TimeSpan Timeout { get; }

    public override string Describe() => Composite is not null
        ? "add composite index (" + string.Join(", ", Composite.Select(p => $"{p.Path} {(p.Order == CompositePathSortOrder.Ascending ? "ASC" : "DESC")}")) + ")"
        : $"add index {IncludedPath}";

    public override JToken ToCanonical() => new JObject
    {
        ["op"] = "AddIndex",
        ["composite"] = Composite is null ? null : new JArray(Composite.Select(p => $"{p.Path} {p.Order}")),
        ["path"] = IncludedPath,
    };

    private bool IsPresent(IndexingPolicy policy) => Composite is not null
        ? policy.CompositeIndexes.Any(existing => existing.Count == Composite.Count &&
            existing.Zip(Composite, (a, b) => a.Path == b.Path && a.Order == b.Order).All(same => same))
        : policy.IncludedPaths.Any(p => p.Path == IncludedPath) || (policy.IncludedPaths.Any(p => p.Path == "/*") && !policy.ExcludedPaths.Any(p => IncludedPath!.StartsWith(p.Path.TrimEnd('*', '?'), StringComparison.Ordinal)));

    public async Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken)
    {
        JObject? before = null;
        var replaced = await IndexPolicies.ChangeAsync(context.Target.Container, async (properties, ct) =>
        {
            if (IsPresent(properties.IndexingPolicy))
            {
                context.Log?.Invoke($"{Describe()}: already in the indexing policy.");
                return false;
            }

            before = IndexPolicies.ToJson(properties.IndexingPolicy);
            if (Composite is not null)
            {
                properties.IndexingPolicy.CompositeIndexes.Add(new Collection<CompositePath>(Composite.Select(p => new CompositePath { Path = p.Path, Order = p.Order }).ToList()));
            }
            else
            {
                properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = IncludedPath });
            }

            if (context.RecordIndexImage is { } record)
            {
                // The policy before the change is durable before the change is made.
                await record(new IndexImage { Step = context.Step, Before = before, After = IndexPolicies.ToJson(properties.IndexingPolicy) }, ct).ConfigureAwait(false);
            }

            return true;
        }, ex => ex.StatusCode == HttpStatusCode.BadRequest
            ? CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidDefinition, "InvalidIndex", $"The service refused the index: {Describe()}.", Describe(),
                "Check the paths (a composite index needs at least two, none of them the id or system properties).")
            : null, cancellationToken).ConfigureAwait(false);
        if (replaced is not null)
        {
            if (context.RecordIndexImage is { } recordAfter && replaced.Resource?.IndexingPolicy is { } kept)
            {
                // The policy as the service keeps it (it may add defaults): what an undo compares.
                await recordAfter(new IndexImage { Step = context.Step, Before = before!, After = IndexPolicies.ToJson(kept) }, cancellationToken).ConfigureAwait(false);
            }

            context.Log?.Invoke($"{Describe()}: indexing policy updated; waiting for the index to be built.");
        }

        await IndexPolicies.WaitForTransformationAsync(context, Describe(), Timeout, cancellationToken).ConfigureAwait(false);
    }

    public async Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken)
    {
        var properties = (await target.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        return IsPresent(properties.IndexingPolicy) ? $"{Describe()}: already present, nothing to change." : $"{Describe()}: would be added to the indexing policy.";
    }
}
