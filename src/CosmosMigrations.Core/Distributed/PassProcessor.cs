using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Documents;
using CosmosMigrations.Errors;
using CosmosMigrations.Journal;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Steps;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Distributed;

/// <summary>Hosts this worker's instance of the change feed processor for one document pass:
/// every instance with the same processor name shares the pass's feed ranges through leases in
/// the lease container (balanced across instances, handed over when one stops or dies,
/// checkpointed per range). Each delivered batch goes through the pass's operations and the same
/// guarded writes as a single run, so a batch delivered again changes nothing twice.</summary>
internal sealed class PassProcessor
{
    private readonly TargetContainer _target;
    private readonly DocumentPass _pass;
    private readonly RequestGate _gate;
    private readonly WorkerLedger _ledger;
    private readonly RunOptionsView _options;
    private readonly Action<string>? _log;
    private readonly ConcurrentDictionary<string, DocumentWriter> _writers = new(StringComparer.Ordinal);
    private readonly DocumentWriter _planner;
    private readonly HashSet<string> _failedIds;
    private readonly CancellationToken _runToken;
    private readonly JournalStore? _journal;
    private readonly int _step;
    private MigrationException? _failure;

    /// <summary>The documents of <paramref name="failedIds"/>, already recorded as failed, are not
    /// tried (or counted) again. With <paramref name="journal"/>, every change is journaled first,
    /// as in a single run (as step <paramref name="step"/>).</summary>
    public PassProcessor(TargetContainer target, DocumentPass pass, RequestGate gate, WorkerLedger ledger, RunOptionsView options, IEnumerable<string> failedIds, Action<string>? log, CancellationToken runToken,
        JournalStore? journal = null, int step = 0)
    {
        _journal = journal;
        _step = step;
        _runToken = runToken;
        _failedIds = new HashSet<string>(failedIds, StringComparer.Ordinal);
        _target = target;
        _pass = pass;
        _gate = gate;
        _ledger = ledger;
        _options = options;
        _log = log;
        _planner = new DocumentWriter(target, pass, ResilientSender.Ungated, filterUnchecked: true);
    }

    /// <summary>Set when documents failed beyond -MaxFailures: the run fails.</summary>
    public MigrationException? Failure => Volatile.Read(ref _failure);

    public ChangeFeedProcessor Build(string processorName, string instanceName, Container leases, TimeSpan leaseDuration) =>
        _target.Container.GetChangeFeedProcessorBuilder(processorName, (Container.ChangeFeedStreamHandler)HandleAsync)
            .WithInstanceName(instanceName)
            .WithLeaseContainer(leases)
            .WithStartTime(DateTime.MinValue.ToUniversalTime())
            .WithMaxItems(_options.BatchSize)
            .WithPollInterval(TimeSpan.FromMilliseconds(Math.Min(1000, leaseDuration.TotalMilliseconds / 6)))
            .WithLeaseConfiguration(
                acquireInterval: TimeSpan.FromMilliseconds(leaseDuration.TotalMilliseconds / 4),
                expirationInterval: leaseDuration,
                renewInterval: TimeSpan.FromMilliseconds(leaseDuration.TotalMilliseconds / 3))
            .WithLeaseAcquireNotification(async token =>
            {
                _log?.Invoke($"Feed range {token} acquired by this worker.");
                await _ledger.RecoverAsync(token, _planner, _runToken).ConfigureAwait(false);
            })
            .WithErrorNotification((token, error) =>
            {
                var cause = error.InnerException ?? error;
                _log?.Invoke(cause is CosmosException { StatusCode: System.Net.HttpStatusCode.PreconditionFailed }
                    ? $"Feed range {token} went to another worker (the processor balances ranges across workers)."
                    : $"Change feed processor, feed range {token}: {CosmosErrors.FirstLine(cause.Message)}");
                return Task.CompletedTask;
            })
            .Build();

    private bool IsKnownFailure(string id)
    {
        lock (_failedIds)
        {
            return _failedIds.Contains(id);
        }
    }

    /// <summary>A batch runs to its end even when the processor cancels it (its lease went to
    /// another worker): its changes and counts then land together, and the new owner finds them
    /// done. Only this worker's own cancellation (Ctrl+C) interrupts it.</summary>
    private Task HandleAsync(ChangeFeedProcessorContext context, Stream changes, CancellationToken processorToken) =>
        ProcessBatchAsync(context, changes, _runToken);

    private async Task ProcessBatchAsync(ChangeFeedProcessorContext context, Stream changes, CancellationToken cancellationToken)
    {
        var documents = DocumentJson.ReadPage(changes).OfType<JObject>().ToList();
        if (documents.Count == 0 || Failure is not null)
        {
            return;
        }

        // One lane a feed range, as in a single run: a throttled range slows down alone.
        var writer = _writers.GetOrAdd(context.LeaseToken, _ => new DocumentWriter(_target, _pass, new ResilientSender(_gate.ForRange()), filterUnchecked: true, journal: _journal, step: _step));
        var planned = new List<JObject>();
        foreach (var document in documents)
        {
            try
            {
                if ((await writer.PlanAsync(document, cancellationToken).ConfigureAwait(false)).Changed)
                {
                    planned.Add(_ledger.KeyOf(document));
                }
            }
            catch (DocumentOperationException)
            {
                // The write reports it as a failure of this document.
            }
        }

        if (planned.Count > 0)
        {
            await _ledger.BeginAsync(context.LeaseToken, planned, cancellationToken).ConfigureAwait(false);
        }

        // With a journal, the batch's before-images are written first, in one record.
        var tried = documents.Where(d => !IsKnownFailure((string?)d["id"] ?? "")).ToList();
        var page = await writer.BeginPageAsync(tried, cancellationToken).ConfigureAwait(false);
        var outcomes = await Task.WhenAll(tried.Select((_, i) => page.WriteAsync(i, cancellationToken))).ConfigureAwait(false);
        await page.CompleteAsync(cancellationToken).ConfigureAwait(false);
        var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
        await _ledger.EndAsync(context.LeaseToken, changed, documents.Count, planned.Count > 0, cancellationToken).ConfigureAwait(false);
        var failed = outcomes.Where(o => o.Result == WriteResult.Failed).ToList();
        if (failed.Count > 0)
        {
            lock (_failedIds)
            {
                failed.ForEach(f => _failedIds.Add(f.Id));
            }

            var total = await _ledger.RecordFailuresAsync(failed, cancellationToken).ConfigureAwait(false);
            if (total > _options.MaxFailures)
            {
                var first = failed[0];
                Interlocked.CompareExchange(ref _failure, new MigrationException(MigrationErrorKind.DocumentFailed, "DocumentMigrationFailed",
                    $"Document '{first.Id}' (partition key {first.PartitionKey}) could not be migrated: {first.Error}." +
                    (failed.Count > 1 ? $" {failed.Count - 1} more document(s) of the same batch failed too." : "") +
                    " The feed range's checkpoint stays before this batch.",
                    first.Id,
                    _options.MaxFailures == 0
                        ? "Fix the document (or the migration), then start again: it resumes from the checkpoints. To record such documents and go on, pass -MaxFailures N."
                        : $"More than {_options.MaxFailures} document(s) failed (-MaxFailures); see the failures in Get-MigrationStatus, fix them, and start again."), null);

                // Not checkpointed: the batch comes again when the migration is resumed.
                throw Failure!;
            }
        }
    }
}
