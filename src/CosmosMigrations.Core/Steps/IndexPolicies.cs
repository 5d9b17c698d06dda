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

    /// <summary>Changes a container's indexing policy under its ETag: <paramref name="change"/> is given a
    /// fresh read and changes its policy, or returns false to write nothing; when another changed the
    /// policy meanwhile (412), it reads and decides again (up to five times). A refusal of the
    /// replace goes through <paramref name="refused"/> when given. Returns the replace's response (the
    /// container as the service keeps it: it may add defaults), or null when nothing was written.</summary>
    public static async Task<ContainerResponse?> ChangeAsync(Container container, Func<ContainerProperties, CancellationToken, Task<bool>> change,
        Func<CosmosException, Exception?>? refused, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var response = await container.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            var properties = response.Resource;
            if (!await change(properties, cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            try
            {
                return await container.ReplaceContainerAsync(properties, new ContainerRequestOptions { IfMatchEtag = response.ETag }, cancellationToken).ConfigureAwait(false);
            }
            catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.PreconditionFailed && attempt < 5)
            {
                // Someone else changed the policy meanwhile: decide again from a fresh read.
            }
            catch (CosmosException ex) when (refused?.Invoke(ex) is { } error)
            {
                throw error;
            }
        }
    }

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
