using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Operations;

/// <summary>How many documents of a container lack a field of the required type, counted
/// server-side, with a few sample ids: the gate before a field becomes required.</summary>
public sealed record ConformanceResult(string Container, string Field, string Type, long NonConforming, IReadOnlyList<string> SampleIds)
{
    public bool Conforms => NonConforming == 0;
}

internal static class ConformanceChecker
{
    private static readonly Dictionary<string, string> TypeFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        ["string"] = "IS_STRING",
        ["number"] = "IS_NUMBER",
        ["boolean"] = "IS_BOOL",
        ["object"] = "IS_OBJECT",
        ["array"] = "IS_ARRAY",
    };

    public static IReadOnlyCollection<string> Types { get; } = new[] { "any", "string", "number", "boolean", "object", "array" };

    public static string NormaliseType(string? type, string where)
    {
        var value = string.IsNullOrWhiteSpace(type) ? "any" : type!.Trim().ToLowerInvariant();
        if (value != "any" && !TypeFunctions.ContainsKey(value))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidRequiredType",
                $"{where}: '{type}' is not a type to require. Use one of: {string.Join(", ", Types)}.", type);
        }

        return value;
    }

    /// <summary>The condition a conforming document meets: defined, not null, of the type.</summary>
    public static string Condition(FieldPath field, string type)
    {
        var sql = field.ToSql();
        return type == "any" ? $"(IS_DEFINED({sql}) AND NOT IS_NULL({sql}))" : $"{TypeFunctions[type]}({sql})";
    }

    public static async Task<ConformanceResult> CheckAsync(TargetContainer target, FieldPath field, string type, int sampleSize, CancellationToken cancellationToken)
    {
        var violation = $"NOT {Condition(field, type)}";
        // Each query runs again from the start if throttled: a count and a few ids are cheap.
        var giveUp = new GiveUp("TransientFailuresExhausted", $"Counting the documents of '{target.Name}' that lack '{field.Text}' kept failing.", target.Name,
            "The service is throttling or unavailable: try again later, or when the container's throughput allows.");
        var count = await ResilientSender.Ungated.RunAsync(async ct =>
        {
            long total = 0;
            using var iterator = target.Container.GetItemQueryIterator<long>(new QueryDefinition($"SELECT VALUE COUNT(1) FROM c WHERE {violation}"));
            while (iterator.HasMoreResults)
            {
                total += (await iterator.ReadNextAsync(ct).ConfigureAwait(false)).Sum();
            }

            return total;
        }, giveUp, cancellationToken).ConfigureAwait(false);

        var samples = new List<string>();
        if (count > 0 && sampleSize > 0)
        {
            samples = await ResilientSender.Ungated.RunAsync(async ct =>
            {
                var ids = new List<string>();
                using var iterator = target.Container.GetItemQueryIterator<string>(new QueryDefinition($"SELECT TOP {sampleSize} VALUE c.id FROM c WHERE {violation}"));
                while (iterator.HasMoreResults && ids.Count < sampleSize)
                {
                    ids.AddRange(await iterator.ReadNextAsync(ct).ConfigureAwait(false));
                }

                return ids;
            }, giveUp, cancellationToken).ConfigureAwait(false);
        }

        return new ConformanceResult(target.Name, field.Text, type, count, samples.Take(sampleSize).ToList());
    }
}
