using CosmosMigrations.Connection;
using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>What the cut-over did with the documents the copy could not write.</summary>
internal sealed record MoveFailureRetry(long Copied, long Gone, FailureCounts Remaining);

/// <summary>The documents a move's copy could not write (its entries in the failure store), at the
/// cut-over: the application has stopped writing, so each is read again from the source (a point
/// read by the key its entry keeps) and copied as the copy would (<see cref="MoveWrites"/>). A
/// document copied, gone from the source, or no longer under the move's filter leaves the store;
/// one that fails again keeps its entry (its error, class and attempts brought up to date). The
/// move's counts are then set from what is left: absolute values, so a cut-over interrupted
/// half-way and run again counts exactly. The entries are read a page at a time (flat memory).</summary>
internal static class MoveFailures
{
    public static async Task<MoveFailureRetry> RetryAsync(MigrationConnection connection, TrackingDocument tracked, TargetContainer source, MoveWrites writes,
        ResilientSender sender, int failureListCap, CancellationToken cancellationToken)
    {
        var store = new FailureStore(connection.FailureContainerName, ct => FailureStore.OpenContainerAsync(connection, create: false, ct), sender);
        var remaining = new FailureCounts();
        var listed = new List<DocumentFailure>();
        long copied = 0, gone = 0;
        using (var reader = await store.ReaderAsync(tracked.Name, tracked.FailureEpoch ?? 0, null, 100, cancellationToken).ConfigureAwait(false))
        {
            var writer = writes.ForRange(sender, null, 0);
            while (reader is not null && await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } entries)
            {
                if (entries.Count == 0)
                {
                    // A page may come back empty before the last one.
                    continue;
                }

                var documents = await Task.WhenAll(entries.Select(e =>
                    DocumentWriter.ReadDocumentAsync(source, sender, e.DocumentId, source.PartitionKey.Read(e.Key), cancellationToken))).ConfigureAwait(false);
                var present = documents.Where(d => d is not null).Select(d => d!).ToList();
                var page = await writer.BeginPageAsync(present, cancellationToken).ConfigureAwait(false);
                var outcomes = await Task.WhenAll(present.Select((_, i) => page.WriteAsync(i, cancellationToken))).ConfigureAwait(false);
                var byId = new Dictionary<string, WriteOutcome>(StringComparer.Ordinal);
                for (var i = 0; i < present.Count; i++)
                {
                    byId[(string?)present[i]["id"] ?? ""] = outcomes[i];
                }

                await Task.WhenAll(entries.Select(async (entry, i) =>
                {
                    if (documents[i] is null || !byId.TryGetValue(entry.DocumentId, out var outcome))
                    {
                        Interlocked.Increment(ref gone);
                        await store.DeleteAsync(entry, cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    if (outcome.Result != WriteResult.Failed)
                    {
                        Interlocked.Increment(ref copied);
                        await store.DeleteAsync(entry, cancellationToken).ConfigureAwait(false);
                        return;
                    }

                    var failureClass = outcome.Class ?? FailureClass.Transform;
                    entry.Class = failureClass.ToString();
                    entry.Error = outcome.Error ?? "";
                    entry.Attempts += outcome.Attempts;
                    entry.At = Clock.NowMs();
                    // Nobody else writes the entries of a move at its cut-over: a lost race only
                    // leaves the older error, and the document is counted all the same.
                    await store.TryReplaceAsync(entry, cancellationToken).ConfigureAwait(false);
                    lock (remaining)
                    {
                        remaining.Add(failureClass, 1);
                        if (listed.Count < failureListCap)
                        {
                            listed.Add(new DocumentFailure { Id = entry.DocumentId, PartitionKey = entry.PartitionKey, Error = entry.Error });
                        }
                    }
                })).ConfigureAwait(false);
            }
        }

        await TrackingStore.Of(connection).UpdateAsync(tracked.Name, document =>
        {
            if (document is null)
            {
                return null;
            }

            document.FailureCount = remaining.Total > 0 ? remaining.Total : null;
            document.Failed = remaining.Total > 0 ? remaining : null;
            document.Failures = listed.Count > 0 ? listed : null;
            return document;
        }, "move failures", cancellationToken).ConfigureAwait(false);
        return new MoveFailureRetry(copied, gone, remaining);
    }

    /// <summary>The cut-over refused: documents of the source are still missing from the target.</summary>
    public static MigrationException Missing(string name, MoveRecord record, FailureCounts remaining) =>
        new(MigrationErrorKind.RequirementNotMet, "MoveHasFailedDocuments",
            $"{remaining.Total} document(s) of '{record.Source}' could not be copied to '{record.Target}' (Transform {remaining.Transform}, Refused {remaining.Refused}, Exhausted {remaining.Exhausted}): " +
            $"the move is not completed while they are missing from the target.",
            name,
            $"See them with Get-MigrationFailure -Name {name} (each with its error and the document as it was). Fix them in '{record.Source}' " +
            $"(or, when the move's -Operation is wrong, remove the move with Undo-SchemaMigration -Name {name} and start it again with a corrected one), " +
            "then run Complete-ContainerMove again: it copies them before it verifies.");
}
