using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Running;

/// <summary>The rule both engines count by. Before a page's (or a change feed batch's) first write,
/// the documents it is about to change are recorded (a <see cref="Tracking.PageIntent"/>); the same
/// write that counts the page removes its intent. A run that dies between the two leaves the
/// intent behind, and whoever takes the range over counts it before it goes on: a document of the
/// intent was changed by the dead run when its ETag moved since the page read it and it no longer
/// needs the change. So every change is counted once: with its page, or from its page's intent,
/// never both (the intent is gone once the page is counted).</summary>
internal static class ChangeIntents
{
    /// <summary>Reads of an intent's documents in flight at once.</summary>
    private const int ParallelReads = 16;

    /// <summary>The documents of <paramref name="intended"/> that were changed after their page read
    /// them and no longer need the change (<paramref name="planner"/> plans none): the changes of a
    /// page that was never counted. Their ids are returned.</summary>
    public static async Task<IReadOnlyList<string>> ChangedAsync(IReadOnlyList<JObject> intended, TargetContainer target, IPassWriter planner, ResilientSender sender,
        CancellationToken cancellationToken)
    {
        var changed = new List<string>();
        using var reads = new SemaphoreSlim(ParallelReads);
        await Task.WhenAll(intended.Select(async key =>
        {
            await reads.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var id = (string?)key["id"] ?? "";
                var current = await DocumentWriter.ReadDocumentAsync(target, sender, id, target.PartitionKey.Read(key), cancellationToken).ConfigureAwait(false);
                if (current is null || Equals((string?)current["_etag"], (string?)key["_etag"]))
                {
                    // Deleted (nothing to count), or not written since its page read it.
                    return;
                }

                bool needsChange;
                try
                {
                    needsChange = await planner.NeedsChangeAsync(current, cancellationToken).ConfigureAwait(false);
                }
                catch (Operations.DocumentOperationException)
                {
                    needsChange = true;
                }

                if (!needsChange)
                {
                    lock (changed)
                    {
                        changed.Add(id);
                    }
                }
            }
            finally
            {
                reads.Release();
            }
        })).ConfigureAwait(false);
        return changed;
    }
}
