using CosmosMigrations.Errors;

namespace CosmosMigrations.Steps;

/// <summary>Indexing policies as JSON (as the SDK writes them: what is recorded, compared and
/// restored), and the wait for an index transformation to finish.</summary>
internal static class IndexPolicies
{
    /// <summary>How often the transformation progress is read while waiting.</summary>
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    public static JObject ToJson(IndexingPolicy policy) => JObject.Parse(JsonConvert.SerializeObject(policy));

    public static IndexingPolicy FromJson(JObject json) => JsonConvert.DeserializeObject<IndexingPolicy>(json.ToString(Formatting.None))!;

    /// <summary>Waits until the service reports the container's index transformation at 100 %
    /// (reporting progress as it goes), or fails after <paramref name="timeout"/>.</summary>
    public static async Task WaitForTransformationAsync(ContainerStepContext context, string what, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var last = -2;
        while (true)
        {
            var response = await context.Target.Container.ReadContainerAsync(new ContainerRequestOptions { PopulateQuotaInfo = true }, cancellationToken).ConfigureAwait(false);
            var header = response.Headers["x-ms-documentdb-collection-index-transformation-progress"];
            // -1 or absent: the service reports no transformation in progress.
            var progress = int.TryParse(header, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : -1;
            if (progress < 0 || progress >= 100)
            {
                context.Log?.Invoke($"{what}: index transformation complete.");
                return;
            }

            if (progress != last)
            {
                context.Log?.Invoke($"{what}: index transformation at {progress} %.");
                context.ReportStep($"{what}: index transformation", progress);
                last = progress;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                throw new MigrationException(MigrationErrorKind.IndexTimeout, "IndexTransformationTimeout",
                    $"The index transformation of '{context.Target.Name}' was still at {progress} % after {timeout}.", context.Target.Name,
                    "Large containers take time: start again later (it resumes at this step), or give a longer Timeout.");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }
}
