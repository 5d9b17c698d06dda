using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Running;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Operations;

/// <summary>Adds an index before any query uses it: a composite index (<c>@('status ASC',
/// 'publishedAt DESC')</c>) or an included path (<c>'/status/?'</c> or <c>'status'</c>). It adds
/// only what is missing, replaces the policy conditioned on its ETag, then waits until the
/// service reports the index transformation at 100 %.</summary>
public sealed class AddIndexStep : MigrationStep, IContainerStep
{
    private static readonly Regex IncludedPathPattern = new(@"^(/[^/?*]+)+/(\?|\*)$", RegexOptions.CultureInvariant);

    private AddIndexStep(IReadOnlyList<CompositePath>? composite, string? includedPath, TimeSpan timeout)
    {
        Composite = composite;
        IncludedPath = includedPath;
        Timeout = timeout;
    }

    public IReadOnlyList<CompositePath>? Composite { get; }

    public string? IncludedPath { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Test seam: how often the transformation progress is read.</summary>
    public static TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    public static AddIndexStep Parse(object? value, object? timeout, string where)
    {
        var wait = ParseTimeout(timeout, where);
        switch (value)
        {
            case string single when single.Trim().StartsWith("/", StringComparison.Ordinal):
                var path = single.Trim();
                if (!IncludedPathPattern.IsMatch(path))
                {
                    throw DefinitionParser.Invalid(where, $"'{single}' is not an index path: write it as '/status/?' (a value) or '/tags/*' (a subtree).");
                }

                return new AddIndexStep(null, path, wait);
            case string single:
                return new AddIndexStep(null, FieldPath.Parse(single).ToJsonPointer() + "/?", wait);
            case System.Collections.IEnumerable list:
                var entries = list.Cast<object?>().Select(e => e as string ?? throw DefinitionParser.Invalid(where, "AddIndex entries are strings such as 'status ASC'.")).ToList();
                if (entries.Count < 2)
                {
                    throw DefinitionParser.Invalid(where, "A composite index has at least two paths, e.g. @('status ASC', 'publishedAt DESC'); for one field write AddIndex = 'status'.");
                }

                return new AddIndexStep(entries.Select(e => ParseComposite(e, where)).ToList(), null, wait);
            default:
                throw DefinitionParser.Invalid(where, "AddIndex is a path ('/status/?' or 'status') or a list of 'field ASC|DESC' for a composite index.");
        }
    }

    private static CompositePath ParseComposite(string entry, string where)
    {
        var parts = entry.Trim().Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is < 1 or > 2)
        {
            throw DefinitionParser.Invalid(where, $"'{entry}' is not 'field ASC' or 'field DESC'.");
        }

        var order = parts.Length == 1 ? "ASC" : parts[1].ToUpperInvariant();
        if (order is not ("ASC" or "DESC"))
        {
            throw DefinitionParser.Invalid(where, $"'{entry}': the order is ASC or DESC, not '{parts[1]}'.");
        }

        FieldPath field;
        try
        {
            field = FieldPath.Parse(parts[0]);
        }
        catch (MigrationException ex)
        {
            throw DefinitionParser.Invalid(where, ex.Message);
        }

        return new CompositePath { Path = field.ToJsonPointer(), Order = order == "ASC" ? CompositePathSortOrder.Ascending : CompositePathSortOrder.Descending };
    }

    private static TimeSpan ParseTimeout(object? value, string where) => value switch
    {
        null => TimeSpan.FromMinutes(30),
        TimeSpan span when span > TimeSpan.Zero => span,
        int seconds when seconds > 0 => TimeSpan.FromSeconds(seconds),
        long seconds when seconds > 0 => TimeSpan.FromSeconds(seconds),
        string text when TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var parsed) && parsed > TimeSpan.Zero => parsed,
        _ => throw DefinitionParser.Invalid(where, "Timeout is a positive number of seconds or a time span such as '00:10:00'."),
    };

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
        var container = context.Target.Container;
        for (var attempt = 0; ; attempt++)
        {
            var response = await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var properties = response.Resource;
            if (IsPresent(properties.IndexingPolicy))
            {
                context.Log?.Invoke($"{Describe()}: already in the indexing policy.");
                break;
            }

            if (Composite is not null)
            {
                properties.IndexingPolicy.CompositeIndexes.Add(new Collection<CompositePath>(Composite.Select(p => new CompositePath { Path = p.Path, Order = p.Order }).ToList()));
            }
            else
            {
                properties.IndexingPolicy.IncludedPaths.Add(new IncludedPath { Path = IncludedPath });
            }

            try
            {
                await container.ReplaceContainerAsync(properties, new ContainerRequestOptions { IfMatchEtag = response.ETag }, cancellationToken).ConfigureAwait(false);
                context.Log?.Invoke($"{Describe()}: indexing policy updated; waiting for the index to be built.");
                break;
            }
            catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.PreconditionFailed && attempt < 5)
            {
                // Someone else changed the policy meanwhile: merge again from a fresh read.
            }
            catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.BadRequest)
            {
                throw CosmosErrors.Wrap(ex, MigrationErrorKind.InvalidDefinition, "InvalidIndex", $"The service refused the index: {Describe()}.", Describe(),
                    "Check the paths (a composite index needs at least two, none of them the id or system properties).");
            }
        }

        await WaitForTransformationAsync(context, cancellationToken).ConfigureAwait(false);
    }

    private async Task WaitForTransformationAsync(ContainerStepContext context, CancellationToken cancellationToken)
    {
        var deadline = DateTimeOffset.UtcNow + Timeout;
        var last = -2;
        while (true)
        {
            var response = await context.Target.Container.ReadContainerAsync(new ContainerRequestOptions { PopulateQuotaInfo = true }, cancellationToken).ConfigureAwait(false);
            var header = response.Headers["x-ms-documentdb-collection-index-transformation-progress"];
            // -1 or absent: the service reports no transformation in progress.
            var progress = int.TryParse(header, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : -1;
            if (progress < 0 || progress >= 100)
            {
                context.Log?.Invoke($"{Describe()}: index transformation complete.");
                return;
            }

            if (progress != last)
            {
                context.Log?.Invoke($"{Describe()}: index transformation at {progress} %.");
                context.ReportStep($"{Describe()}: index transformation", progress);
                last = progress;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                throw new MigrationException(MigrationErrorKind.IndexTimeout, "IndexTransformationTimeout",
                    $"The index transformation of '{context.Target.Name}' was still at {progress} % after {Timeout}.", context.Target.Name,
                    "Large containers take time: start the migration again later (it resumes at this step), or give AddIndex a longer Timeout.");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<string> PreviewAsync(TargetContainer target, ResilientCalls calls, CancellationToken cancellationToken)
    {
        var properties = (await target.Container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false)).Resource;
        return IsPresent(properties.IndexingPolicy) ? $"{Describe()}: already present, nothing to change." : $"{Describe()}: would be added to the indexing policy.";
    }
}
