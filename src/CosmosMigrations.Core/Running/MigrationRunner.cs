using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Errors;
using CosmosMigrations.Scanning;
using CosmosMigrations.Tracking;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Running;

/// <summary>Runs one migration: takes the lease on its tracking document, executes its steps from
/// the checkpoint, pages through the container (reading the next page while the current page's
/// writes run), checkpoints after every page whose writes all finished, and ends the run as
/// completed, failed or cancelled (resumable). Only the caller's thread writes to PowerShell:
/// this class reports through <see cref="IProgress{T}"/> and the log callbacks.</summary>
public sealed class MigrationRunner
{
    private readonly MigrationConnection _connection;
    private readonly TrackingStore _store;

    public MigrationRunner(MigrationConnection connection)
    {
        _connection = connection;
        _store = connection.TrackingStore;
    }

    public LeaseOwner Owner { get; set; } = LeaseOwners.Current();

    /// <summary>Verbose messages (the cmdlet's WriteVerbose).</summary>
    public Action<string>? Log { get; set; }

    /// <summary>Warnings (the cmdlet's WriteWarning).</summary>
    public Action<string>? Warn { get; set; }

    /// <summary>Test seam: called after each checkpoint with the number of pages done this run.</summary>
    public Func<int, Task>? AfterCheckpoint { get; set; }

    public TrackingStore Store => _store;

    public async Task<RunResult> RunAsync(MigrationDefinition definition, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var target = await _connection.GetContainerAsync(definition.Container, cancellationToken).ConfigureAwait(false);
        await _connection.EnsureTrackingContainerAsync(cancellationToken).ConfigureAwait(false);
        var calls = new ResilientCalls(new RequestGate(options.MaxDegreeOfParallelism, options.MaxRUPerSecond));
        await ValidateQueriesAsync(target, definition, calls, cancellationToken).ConfigureAwait(false);

        var (document, outcome, warning) = await AcquireAsync(definition, options, calls, cancellationToken).ConfigureAwait(false);
        if (outcome == "Skipped")
        {
            var skipped = MigrationStatus.FromTracking(document, definition.SourcePath);
            skipped.Outcome = "Skipped";
            skipped.ChecksumMismatch = warning is not null;
            skipped.Message = $"Already completed{(skipped.CompletedAt is null ? "" : " at " + skipped.CompletedAt.Value.ToString("u", System.Globalization.CultureInfo.InvariantCulture))}; use -Force to run it again.";
            return new RunResult(skipped, Warning: warning);
        }

        var run = new Run(this, definition, options, target, calls, document, progress, cancellationToken);
        return await run.ExecuteAsync(outcome, warning).ConfigureAwait(false);
    }

    /// <summary>Asks the service to run each pass's query once (TOP 1), so that a filter it rejects
    /// is reported before anything is written, tracking document included.</summary>
    private static async Task ValidateQueriesAsync(TargetContainer target, MigrationDefinition definition, ResilientCalls calls, CancellationToken cancellationToken)
    {
        foreach (var pass in definition.Steps.OfType<DocumentPass>().Where(p => p.ScanCondition is not null))
        {
            using var reader = new PageReader(target.Container, null, new QueryDefinition($"SELECT TOP 1 VALUE 1 FROM c WHERE {pass.ScanCondition}"), null, 1, calls);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The lifecycle of SPEC section 2: new → create; running under a live lease → "already
    /// running"; expired lease → take over; failed/cancelled → resume; completed → skip (or -Force).</summary>
    private async Task<(TrackingDocument Document, string Outcome, string? Warning)> AcquireAsync(
        MigrationDefinition definition, RunOptions options, ResilientCalls calls, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var now = Clock.NowMs();
            var existing = await Retry(ct => _store.GetAsync(definition.Name, ct), calls, cancellationToken).ConfigureAwait(false);
            if (existing is null)
            {
                var created = new TrackingDocument
                {
                    Id = definition.Name,
                    Name = definition.Name,
                    Status = TrackingStatus.Running,
                    StartedAt = now,
                    Container = definition.Container,
                    Description = definition.Description,
                    Source = definition.SourcePath,
                    Checksum = definition.Checksum,
                    Cursor = new MigrationCursor { Step = 0 },
                    Lease = NewLease(options, now),
                    Runs = 1,
                    UpdatedAt = now,
                };
                if (await Retry(ct => _store.TryCreateAsync(created, ct), calls, cancellationToken).ConfigureAwait(false))
                {
                    return (created, "Started", null);
                }

                continue;
            }

            if (!string.Equals(existing.Container, definition.Container, StringComparison.Ordinal))
            {
                throw new MigrationException(MigrationErrorKind.InvalidState, "MigrationNameInUse",
                    $"Migration '{definition.Name}' is already tracked for container '{existing.Container}', not '{definition.Container}'.",
                    definition.Name, "Give this migration its own name: names identify migrations across the whole database.");
            }

            string? warning = null;
            if (existing.Checksum is not null && existing.Checksum != definition.Checksum)
            {
                warning = $"Migration '{definition.Name}' changed since it {(existing.Status == TrackingStatus.Completed ? "completed" : "started")} (checksum {Short(existing.Checksum)} → {Short(definition.Checksum)}).";
                if (options.Strict)
                {
                    throw new MigrationException(MigrationErrorKind.InvalidState, "ChecksumMismatch", warning, definition.Name,
                        "Never edit a migration that has run: write a new migration for the new change. Without -Strict this is a warning.");
                }
            }

            string outcome;
            switch (existing.Status)
            {
                case TrackingStatus.Completed when !options.Force:
                    return (existing, "Skipped", warning);
                case TrackingStatus.Completed:
                    existing.Processed = 0;
                    existing.Scanned = 0;
                    existing.RequestCharge = 0;
                    existing.Failures = null;
                    existing.FailureCount = null;
                    existing.CompletedAt = null;
                    existing.Cursor = new MigrationCursor { Step = 0 };
                    outcome = "Rerun";
                    break;
                case TrackingStatus.Running when existing.Lease is not null && existing.Lease.ExpiresAt > now && existing.Lease.Owner.RunId != Owner.RunId:
                    var seconds = Math.Ceiling((existing.Lease.ExpiresAt - now) / 1000.0);
                    throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationAlreadyRunning",
                        $"Migration '{definition.Name}' is already running, owned by {existing.Lease.Owner} (lease expires in {seconds:0} s).",
                        definition.Name,
                        "Wait for it to finish (Get-MigrationStatus -Watch), or stop it with Stop-SchemaMigration. If its process died, the lease expires by itself and the next start resumes from the checkpoint.");
                case TrackingStatus.Running:
                    Log?.Invoke($"The lease of {existing.Lease?.Owner} on '{definition.Name}' has expired; taking over and resuming from the checkpoint.");
                    outcome = "Resumed";
                    break;
                default:
                    outcome = "Resumed";
                    break;
            }

            if (warning is not null && outcome != "Skipped")
            {
                Warn?.Invoke(warning + " Continuing with the new definition.");
            }

            existing.Status = TrackingStatus.Running;
            existing.StartedAt = now;
            existing.Lease = NewLease(options, now);
            existing.Error = null;
            existing.StopRequested = null;
            existing.StopReason = null;
            existing.Checksum = definition.Checksum;
            existing.Description = definition.Description;
            existing.Source = definition.SourcePath ?? existing.Source;
            existing.Runs++;
            existing.UpdatedAt = now;
            existing.Cursor ??= new MigrationCursor { Step = 0 };
            if (existing.Cursor.Step > definition.Steps.Count)
            {
                existing.Cursor = new MigrationCursor { Step = definition.Steps.Count };
            }

            if (await Retry(ct => _store.TryReplaceAsync(existing, ct), calls, cancellationToken).ConfigureAwait(false))
            {
                return (existing, outcome, warning);
            }
        }

        throw new MigrationException(MigrationErrorKind.AlreadyRunning, "MigrationContended",
            $"Migration '{definition.Name}' is being started by another runner at the same time.", definition.Name, "Let the other runner go on.");
    }

    private Lease NewLease(RunOptions options, long now) =>
        new() { Owner = Owner, ExpiresAt = now + (long)options.LeaseDuration.TotalMilliseconds };

    private static string Short(string checksum) => checksum.Length > 12 ? checksum.Substring(0, 12) : checksum;

    /// <summary>Retries a tracking call that fails transiently (no RU gate: bookkeeping is tiny).</summary>
    internal static async Task<T> Retry<T>(Func<CancellationToken, Task<T>> call, ResilientCalls calls, CancellationToken cancellationToken)
    {
        try
        {
            return await TransientRetry.RunAsync(call, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (CosmosErrors.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
        {
            throw CosmosErrors.Wrap(ex, MigrationErrorKind.Transient, "TrackingUnavailable", "The tracking container kept failing.", calls.Gate.Limit,
                "Start again later: the run resumes from its checkpoint.");
        }
    }

    /// <summary>A dry run: reads and plans every selected document, writes nothing (no tracking
    /// document either), and reports how many would change with a few before/after samples.</summary>
    public async Task<MigrationPreview> PreviewAsync(MigrationDefinition definition, RunOptions options, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        var target = await _connection.GetContainerAsync(definition.Container, cancellationToken).ConfigureAwait(false);
        var calls = new ResilientCalls(new RequestGate(options.MaxDegreeOfParallelism, options.MaxRUPerSecond));
        var preview = new MigrationPreview { Name = definition.Name, Container = definition.Container, Steps = definition.Steps.Select(s => s.Describe()).ToList() };
        var samples = new List<PreviewSample>();
        var failures = new List<FailureRecord>();
        var notes = new List<string>();
        var clock = Stopwatch.StartNew();
        var pages = 0;
        for (var stepIndex = 0; stepIndex < definition.Steps.Count; stepIndex++)
        {
            var step = definition.Steps[stepIndex];
            if (step is not DocumentPass pass)
            {
                if (step is IContainerStep containerStep)
                {
                    notes.Add(await containerStep.PreviewAsync(target, calls, cancellationToken).ConfigureAwait(false));
                }

                continue;
            }

            var writer = new DocumentWriter(target, pass, calls);
            foreach (var range in await GetRangesAsync(target, calls, cancellationToken).ConfigureAwait(false))
            {
                using var reader = new PageReader(target.Container, range, new QueryDefinition(pass.QueryText), null, options.BatchSize, calls);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
                {
                    foreach (var document in page.Documents)
                    {
                        preview.Scanned++;
                        try
                        {
                            var edit = await writer.PlanAsync(document, cancellationToken).ConfigureAwait(false);
                            if (edit.Changed)
                            {
                                preview.WouldChange++;
                                if (samples.Count < options.SampleCount)
                                {
                                    samples.Add(new PreviewSample(edit.Id, Visible(edit.Original), Visible(edit.Current)));
                                }
                            }
                        }
                        catch (Operations.DocumentOperationException ex)
                        {
                            preview.WouldFail++;
                            if (failures.Count < options.FailureListCap)
                            {
                                failures.Add(new FailureRecord((string?)document["id"] ?? "", target.PartitionKey.Describe(document), ex.Message));
                            }
                        }
                    }

                    pages++;
                    progress?.Report(new MigrationProgress
                    {
                        Name = definition.Name,
                        Activity = $"What if: {pass.Describe()}",
                        Step = stepIndex + 1,
                        StepCount = definition.Steps.Count,
                        Scanned = preview.Scanned,
                        ScannedThisRun = preview.Scanned,
                        Processed = preview.WouldChange,
                        RequestCharge = calls.Gate.TotalCharge,
                        Elapsed = clock.Elapsed,
                    });
                    if (options.MaxBatches is { } max && pages >= max)
                    {
                        notes.Add($"Stopped after {pages} page(s) (-MaxBatches): the counts cover only the documents read.");
                        goto done;
                    }
                }
            }
        }

    done:
        preview.RequestCharge = Math.Round(calls.Gate.TotalCharge, 2);
        preview.Samples = samples;
        preview.Failures = failures;
        preview.Notes = notes;
        return preview;
    }

    internal static string Visible(JObject document)
    {
        var copy = (JObject)document.DeepClone();
        foreach (var name in new[] { "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn" })
        {
            copy.Remove(name);
        }

        return copy.ToString(Newtonsoft.Json.Formatting.None);
    }

    internal static async Task<IReadOnlyList<FeedRange>> GetRangesAsync(TargetContainer target, ResilientCalls calls, CancellationToken cancellationToken)
    {
        var ranges = await Retry(ct => target.Container.GetFeedRangesAsync(ct), calls, cancellationToken).ConfigureAwait(false);
        return ranges.Count == 0 ? new FeedRange?[] { null }.Cast<FeedRange>().ToList() : ranges.ToList();
    }

    /// <summary>The state of one run of one migration.</summary>
    private sealed class Run
    {
        private readonly MigrationRunner _runner;
        private readonly MigrationDefinition _definition;
        private readonly RunOptions _options;
        private readonly TargetContainer _target;
        private readonly ResilientCalls _calls;
        private readonly TrackingDocument _doc;
        private readonly IProgress<MigrationProgress>? _progress;
        private readonly CancellationToken _userToken;
        private readonly SemaphoreSlim _trackingLock = new(1, 1);
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly HashSet<string> _failedIds = new(StringComparer.Ordinal);
        private readonly double _chargeAtStart;
        private long _lastPersistMs;
        private int _pagesThisRun;
        private int _pagesStarted;
        private string? _stopReason;
        private long _scannedThisRun;
        private long _changedThisScan;
        private long? _estimate;
        private string _activity = "";
        private int _step;

        public Run(MigrationRunner runner, MigrationDefinition definition, RunOptions options, TargetContainer target, ResilientCalls calls,
            TrackingDocument doc, IProgress<MigrationProgress>? progress, CancellationToken userToken)
        {
            _runner = runner;
            _definition = definition;
            _options = options;
            _target = target;
            _calls = calls;
            _doc = doc;
            _progress = progress;
            _userToken = userToken;
            _chargeAtStart = doc.RequestCharge;
            _lastPersistMs = Clock.NowMs();
            foreach (var failure in doc.Failures ?? new List<DocumentFailure>())
            {
                _failedIds.Add(failure.Id);
            }
        }

        public async Task<RunResult> ExecuteAsync(string outcome, string? warning)
        {
            using var heartbeatStop = CancellationTokenSource.CreateLinkedTokenSource(_userToken);
            var heartbeat = HeartbeatAsync(heartbeatStop.Token);
            MigrationException? error = null;
            try
            {
                if (outcome == "Resumed")
                {
                    _runner.Log?.Invoke($"Resuming '{_definition.Name}' at step {_doc.Cursor!.Step + 1} of {_definition.Steps.Count} ({_doc.Processed} document(s) changed so far).");
                }

                for (_step = _doc.Cursor!.Step; _step < _definition.Steps.Count; _step++)
                {
                    if (Volatile.Read(ref _stopReason) is { } stopReason)
                    {
                        throw new StopRunException(stopReason);
                    }

                    var step = _definition.Steps[_step];
                    _activity = step.Describe();
                    _runner.Log?.Invoke($"Step {_step + 1} of {_definition.Steps.Count}: {_activity}");
                    switch (step)
                    {
                        case DocumentPass pass:
                            await RunPassAsync(pass).ConfigureAwait(false);
                            break;
                        case IContainerStep containerStep:
                            await containerStep.ExecuteAsync(new ContainerStepContext(_target, _calls, _options, ReportStep, _runner.Log), _userToken).ConfigureAwait(false);
                            break;
                    }

                    await UpdateTrackingAsync(d =>
                    {
                        d.Cursor = new MigrationCursor { Step = _step + 1 };
                        d.EstimatedTotal = null;
                    }).ConfigureAwait(false);
                }

                await FinishAsync(d =>
                {
                    d.Status = TrackingStatus.Completed;
                    d.CompletedAt = Clock.NowMs();
                    d.Cursor = null;
                    d.EstimatedTotal = null;
                }).ConfigureAwait(false);
                outcome = outcome == "Resumed" ? "Resumed" : "Completed";
            }
            catch (StopRunException stop)
            {
                await FinishAsync(d =>
                {
                    d.Status = TrackingStatus.Cancelled;
                    d.StopReason = stop.Reason;
                }).ConfigureAwait(false);
                outcome = "Stopped";
            }
            catch (OperationCanceledException) when (_userToken.IsCancellationRequested)
            {
                await FinishAsync(d =>
                {
                    d.Status = TrackingStatus.Cancelled;
                    d.StopReason = "Interrupted";
                }).ConfigureAwait(false);
                outcome = "Stopped";
            }
            catch (LeaseLostException lost)
            {
                error = lost.Error;
                outcome = "LeaseLost";
            }
            catch (Exception ex)
            {
                error = ex as MigrationException ?? CosmosErrors.Wrap(ex, MigrationErrorKind.ServiceError, "MigrationFailed",
                    $"Migration '{_definition.Name}' failed.", _definition.Name, "Fix the cause, then start it again: it resumes from its checkpoint.");
                var message = error.Message;
                await FinishAsync(d =>
                {
                    d.Status = TrackingStatus.Failed;
                    d.Error = message;
                }).ConfigureAwait(false);
                outcome = "Failed";
            }
            finally
            {
#if NET8_0_OR_GREATER
                await heartbeatStop.CancelAsync().ConfigureAwait(false);
#else
                heartbeatStop.Cancel();
#endif
                try
                {
                    await heartbeat.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }

            var status = MigrationStatus.FromTracking(_doc, _definition.SourcePath);
            status.Throttled = _calls.Gate.Throttles;
            if (_calls.Gate.Throttles > 0 || _calls.Retries > 0)
            {
                _runner.Log?.Invoke($"This run: {_calls.Gate.Throttles} request(s) throttled (429) and {_calls.Retries} transient failure(s) retried; concurrency went down to {_calls.Gate.LowestLimit} of {_options.MaxDegreeOfParallelism}.");
            }

            status.Outcome = outcome;
            status.ChecksumMismatch = warning is not null;
            status.Message = outcome switch
            {
                "Stopped" => $"Stopped ({_doc.StopReason}) after {_pagesThisRun} page(s) in this run; start it again to resume from the checkpoint.",
                "LeaseLost" => "Another runner took over this migration; this run stopped without writing.",
                _ => null,
            };
            return new RunResult(status, error, warning);
        }

        private async Task RunPassAsync(DocumentPass pass)
        {
            var cursor = _doc.Cursor!;
            if (cursor.Ranges is null)
            {
                var ranges = await GetRangesAsync(_target, _calls, _userToken).ConfigureAwait(false);
                await UpdateTrackingAsync(d => d.Cursor = new MigrationCursor
                {
                    Step = _step,
                    Pass = 0,
                    Ranges = ranges.Select(r => new RangeCursor { Range = r?.ToJsonString() ?? "" }).ToList(),
                }).ConfigureAwait(false);
                cursor = _doc.Cursor!;
            }

            _estimate = await CountAsync(pass).ConfigureAwait(false);
            if (_estimate is not null)
            {
                await UpdateTrackingAsync(d => d.EstimatedTotal = d.Scanned + _estimate).ConfigureAwait(false);
            }

            var writer = new DocumentWriter(_target, pass, _calls, partialDocuments: pass.Properties is not null);
            while (true)
            {
                _changedThisScan = 0;
                var pending = cursor.Ranges!.Where(r => !r.Done).ToList();
                // Feed ranges are independent: scan them side by side (a few at a time); writes
                // share the gate's concurrency and RU budget.
                using var ranges = new SemaphoreSlim(Math.Max(1, Math.Min(4, _options.MaxDegreeOfParallelism / 4)));
                await Task.WhenAll(pending.Select(async r =>
                {
                    await ranges.WaitAsync(_userToken).ConfigureAwait(false);
                    try
                    {
                        await ScanRangeAsync(pass, writer, r).ConfigureAwait(false);
                    }
                    finally
                    {
                        ranges.Release();
                    }
                })).ConfigureAwait(false);

                // Documents written behind the cursor by live applications would be missed: scan
                // again while a scan still changed something (a cheap query when nothing is left).
                if (!pass.CanVerify || Interlocked.Read(ref _changedThisScan) == 0 || (cursor.Pass ?? 0) >= _options.MaxCatchUpPasses)
                {
                    return;
                }

                if (Volatile.Read(ref _stopReason) is { } stopReason)
                {
                    throw new StopRunException(stopReason);
                }

                _runner.Log?.Invoke($"Scan {(cursor.Pass ?? 0) + 1} changed {_changedThisScan} document(s); scanning again for documents written meanwhile.");
                await UpdateTrackingAsync(d =>
                {
                    d.Cursor!.Pass = (d.Cursor.Pass ?? 0) + 1;
                    foreach (var r in d.Cursor.Ranges!)
                    {
                        r.Continuation = null;
                        r.Done = false;
                    }
                }).ConfigureAwait(false);
            }
        }

        private async Task<long?> CountAsync(DocumentPass pass)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_userToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                using var iterator = _target.Container.GetItemQueryIterator<long>(new QueryDefinition(pass.CountText));
                long total = 0;
                while (iterator.HasMoreResults)
                {
                    var response = await iterator.ReadNextAsync(timeout.Token).ConfigureAwait(false);
                    _calls.Gate.Record(response.RequestCharge);
                    total += response.Sum();
                }

                return total;
            }
            catch (Exception ex) when (!_userToken.IsCancellationRequested)
            {
                if (ex is CosmosException { StatusCode: System.Net.HttpStatusCode.BadRequest } bad)
                {
                    throw CosmosErrors.Wrap(bad, MigrationErrorKind.InvalidArgument, "InvalidQuery", $"The service rejected the scan condition: {pass.ScanCondition}",
                        pass.ScanCondition, "Check the filter: it must be a Cosmos SQL condition over c, e.g. NOT IS_DEFINED(c.avatarUrl).");
                }

                _runner.Log?.Invoke($"Could not count the documents to migrate ({CosmosErrors.FirstLine(ex.Message)}); progress shows no percentage.");
                return null;
            }
        }

        /// <summary>Pages through one feed range with two pages in flight: while page N's last
        /// writes finish and its checkpoint is written, page N+1 is already being written and
        /// page N+2 read. Checkpoints still land strictly in page order, each only after every
        /// write of its page finished, so a crash resumes before any unfinished page.</summary>
        private async Task ScanRangeAsync(DocumentPass pass, DocumentWriter writer, RangeCursor range)
        {
            var feedRange = string.IsNullOrEmpty(range.Range) ? null : FeedRange.FromJsonString(range.Range);
            using var reader = new PageReader(_target.Container, feedRange, new QueryDefinition(pass.ScanQueryText(_target.PartitionKey.Paths)), range.Continuation, _options.BatchSize, _calls);
            using var scanStop = CancellationTokenSource.CreateLinkedTokenSource(_userToken);
            var page = await reader.ReadAsync(_userToken).ConfigureAwait(false);
            Task? previous = null;
            Task<Page?> next = Task.FromResult<Page?>(null);
            try
            {
                // An empty page (an empty feed range, or a range's empty last page) is no batch of
                // work: it does not count toward -MaxBatches, so N ranges slice like one.
                while (page is not null && (page.Documents.Count == 0 || MayStartPage()))
                {
                    // Read ahead: the next page travels while this page's writes run.
                    next = reader.Finished ? Task.FromResult<Page?>(null) : reader.ReadAsync(scanStop.Token);
                    var current = page;
                    var writes = Task.WhenAll(current.Documents.Select(d => WriteOneAsync(writer, d)));
                    var before = previous;
                    previous = CheckpointAfterAsync(before, writes, range, current);
                    if (before is not null)
                    {
                        await before.ConfigureAwait(false);
                    }

                    page = await next.ConfigureAwait(false);
                }

                if (previous is not null)
                {
                    await previous.ConfigureAwait(false);
                }

                if (page is not null || (Volatile.Read(ref _stopReason) is { } reason && !range.Done))
                {
                    // Stopped before the end of the range: resumable from the last checkpoint.
                    throw new StopRunException(Volatile.Read(ref _stopReason) ?? "MaxBatches");
                }
            }
            catch
            {
#if NET8_0_OR_GREATER
                await scanStop.CancelAsync().ConfigureAwait(false);
#else
                scanStop.Cancel();
#endif
                // Let what is in flight settle (its writes are idempotent; its checkpoint is not
                // taken past a failure), so nothing outlives the run.
                foreach (var pending in new Task?[] { previous, next })
                {
                    try
                    {
                        if (pending is not null)
                        {
                            await pending.ConfigureAwait(false);
                        }
                    }
                    catch (Exception)
                    {
                    }
                }

                throw;
            }
        }

        private async Task CheckpointAfterAsync(Task? previous, Task<WriteOutcome[]> writes, RangeCursor range, Page page)
        {
            var outcomes = await writes.ConfigureAwait(false);
            if (previous is not null)
            {
                try
                {
                    // In order: page N+1's checkpoint never lands before page N's.
                    await previous.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not LeaseLostException)
                {
                    // Page N failed, so the checkpoint stays before it; this page's writes are
                    // done all the same, and counted, so that `processed` stays exact.
                    await CountWithoutCheckpointAsync(outcomes).ConfigureAwait(false);
                    throw;
                }
            }

            await CompletePageAsync(range, page, outcomes).ConfigureAwait(false);
        }

        private async Task CountWithoutCheckpointAsync(WriteOutcome[] outcomes)
        {
            var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
            if (changed == 0)
            {
                return;
            }

            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await _trackingLock.WaitAsync(timeout.Token).ConfigureAwait(false);
                try
                {
                    _doc.Processed += changed;
                    await PersistLockedAsync(timeout.Token, renewLease: true).ConfigureAwait(false);
                }
                finally
                {
                    _trackingLock.Release();
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                _runner.Log?.Invoke($"Could not record {changed} change(s) of an unfinished page: {CosmosErrors.FirstLine(ex.Message)}");
            }
        }

        private Task<WriteOutcome> WriteOneAsync(DocumentWriter writer, JObject document)
        {
            var id = (string?)document["id"] ?? "";
            if (_failedIds.Contains(id))
            {
                // Already recorded as failed in this migration: do not try (or count) it again.
                return Task.FromResult(new WriteOutcome(WriteResult.Unchanged, id, _target.PartitionKey.Describe(document)));
            }

            return writer.WriteAsync(document, _userToken);
        }

        private async Task CompletePageAsync(RangeCursor range, Page page, WriteOutcome[] outcomes)
        {
            var changed = outcomes.LongCount(o => o.Result == WriteResult.Changed);
            var failed = outcomes.Where(o => o.Result == WriteResult.Failed).ToList();
            Interlocked.Add(ref _changedThisScan, changed);
            Interlocked.Add(ref _scannedThisRun, page.Documents.Count);
            MigrationException? fatal = null;
            await UpdateTrackingAsync(d =>
            {
                d.Processed += changed;
                d.RequestCharge = _chargeAtStart + _calls.Gate.TotalCharge;
                foreach (var failure in failed)
                {
                    d.FailureCount = (d.FailureCount ?? 0) + 1;
                    _failedIds.Add(failure.Id);
                    d.Failures ??= new List<DocumentFailure>();
                    if (d.Failures.Count < _options.FailureListCap)
                    {
                        d.Failures.Add(new DocumentFailure { Id = failure.Id, PartitionKey = failure.PartitionKey, Error = failure.Error ?? "" });
                    }
                }

                if (failed.Count > 0 && d.FailureCount > _options.MaxFailures)
                {
                    var first = failed[0];
                    fatal = new MigrationException(MigrationErrorKind.DocumentFailed, "DocumentMigrationFailed",
                        $"Document '{first.Id}' (partition key {first.PartitionKey}) could not be migrated: {first.Error}." +
                        (failed.Count > 1 ? $" {failed.Count - 1} more document(s) of the same page failed too." : "") +
                        " The checkpoint stays before this page.",
                        first.Id,
                        _options.MaxFailures == 0
                            ? "Fix the document (or the migration), then start again: it resumes from the checkpoint. To record such documents and go on, pass -MaxFailures N."
                            : $"More than {_options.MaxFailures} document(s) failed (-MaxFailures); see the failures in Get-MigrationStatus, fix them, and start again.");
                    return;
                }

                // Only now, with every write of the page done, does the checkpoint move past it.
                d.Scanned += page.Documents.Count;
                range.Continuation = page.ContinuationAfter;
                range.Done = page.ContinuationAfter is null;
            }).ConfigureAwait(false);

            if (fatal is not null)
            {
                throw fatal;
            }

            var pages = Interlocked.Increment(ref _pagesThisRun);
            Report();
            if (_runner.AfterCheckpoint is { } hook)
            {
                await hook(pages).ConfigureAwait(false);
            }

            // A stop is decided here and honoured by the scan loops: they start no new page, and
            // the pages already in flight finish and checkpoint, so every change is counted.
            if (_doc.StopRequested == true)
            {
                RequestStop("StopRequested");
            }

            if (_options.MaxDuration is { } maxDuration && _clock.Elapsed >= maxDuration)
            {
                RequestStop("MaxDuration");
            }
        }

        private void RequestStop(string reason) => Interlocked.CompareExchange(ref _stopReason, reason, null);

        /// <summary>Whether a scan may start another page (a stop was asked, or -MaxBatches pages started).</summary>
        private bool MayStartPage()
        {
            if (Volatile.Read(ref _stopReason) is not null)
            {
                return false;
            }

            if (_options.MaxBatches is { } maxBatches && Interlocked.Increment(ref _pagesStarted) > maxBatches)
            {
                RequestStop("MaxBatches");
                return false;
            }

            return true;
        }

        private void ReportStep(string activity, int? percent)
        {
            if (_progress is null)
            {
                return;
            }

            var snapshot = Snapshot();
            snapshot.Activity = activity;
            snapshot.StepPercent = percent;
            _progress.Report(snapshot);
        }

        private void Report() => _progress?.Report(Snapshot());

        private MigrationProgress Snapshot()
        {
            var elapsed = _clock.Elapsed;
            var charge = _calls.Gate.TotalCharge;
            return new MigrationProgress
            {
                Name = _definition.Name,
                Activity = _activity,
                Step = _step + 1,
                StepCount = _definition.Steps.Count,
                Scanned = _doc.Scanned,
                Processed = _doc.Processed,
                Failed = _doc.FailureCount ?? 0,
                EstimatedTotal = _estimate,
                ScannedThisRun = Interlocked.Read(ref _scannedThisRun),
                RequestCharge = _chargeAtStart + charge,
                RequestUnitsPerSecond = elapsed.TotalSeconds > 0 ? charge / elapsed.TotalSeconds : 0,
                Elapsed = elapsed,
            };
        }

        /// <summary>Changes the tracking document under the lock and writes it, conditioned on its
        /// ETag, renewing the lease. On a conflict it re-reads: if the lease is still ours (someone
        /// set the stop flag), the change is applied again on the fresh copy; otherwise the run has
        /// lost the migration and stops without writing.</summary>
        private async Task UpdateTrackingAsync(Action<TrackingDocument> change)
        {
            await _trackingLock.WaitAsync(_userToken).ConfigureAwait(false);
            try
            {
                change(_doc);
                await PersistLockedAsync(_userToken, renewLease: true).ConfigureAwait(false);
            }
            finally
            {
                _trackingLock.Release();
            }
        }

        private async Task PersistLockedAsync(CancellationToken cancellationToken, bool renewLease)
        {
            for (var attempt = 0; attempt < 10; attempt++)
            {
                var now = Clock.NowMs();
                _doc.UpdatedAt = now;
                if (renewLease && _doc.Lease is not null)
                {
                    _doc.Lease.ExpiresAt = now + (long)_options.LeaseDuration.TotalMilliseconds;
                }

                if (await Retry(ct => _runner._store.TryReplaceAsync(_doc, ct), _calls, cancellationToken).ConfigureAwait(false))
                {
                    Interlocked.Exchange(ref _lastPersistMs, now);
                    return;
                }

                var fresh = await Retry(ct => _runner._store.GetAsync(_definition.Name, ct), _calls, cancellationToken).ConfigureAwait(false);
                if (fresh is null || fresh.Lease?.Owner.RunId != _runner.Owner.RunId)
                {
                    throw new LeaseLostException(new MigrationException(MigrationErrorKind.LeaseLost, "LeaseLost",
                        fresh is null
                            ? $"The tracking document of '{_definition.Name}' was deleted while it ran (Reset-SchemaMigration?); this run stopped."
                            : $"Migration '{_definition.Name}' was taken over by {fresh.Lease?.Owner} (this run's lease had expired); this run stopped without writing.",
                        _definition.Name, "Use a -LeaseDuration longer than the slowest page, and check for other runners (Get-MigrationStatus)."));
                }

                _doc.ETag = fresh.ETag;
                _doc.StopRequested = fresh.StopRequested;
            }

            throw new MigrationException(MigrationErrorKind.ServiceError, "TrackingUpdateContended",
                $"The tracking document of '{_definition.Name}' kept changing; the checkpoint did not go through.", _definition.Name);
        }

        /// <summary>The last write of a run: status and lease released. It goes through even when
        /// the user pressed Ctrl+C (that is what makes the run resumable), bounded in time.</summary>
        private async Task FinishAsync(Action<TrackingDocument> change)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _trackingLock.WaitAsync(timeout.Token).ConfigureAwait(false);
            try
            {
                change(_doc);
                _doc.RequestCharge = _chargeAtStart + _calls.Gate.TotalCharge;
                _doc.Lease = null;
                await PersistLockedAsync(timeout.Token, renewLease: false).ConfigureAwait(false);
            }
            catch (LeaseLostException)
            {
                throw;
            }
            catch (Exception ex) when (ex is not LeaseLostException)
            {
                _runner.Warn?.Invoke($"Could not record the end of '{_definition.Name}' ({CosmosErrors.FirstLine(ex.Message)}); its lease expires by itself and the next start resumes from the last checkpoint.");
            }
            finally
            {
                _trackingLock.Release();
            }
        }

        /// <summary>Renews the lease between checkpoints when a page takes long (a tight RU budget).</summary>
        private async Task HeartbeatAsync(CancellationToken cancellationToken)
        {
            var interval = TimeSpan.FromMilliseconds(_options.LeaseDuration.TotalMilliseconds / 3);
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
                if (Clock.NowMs() - Interlocked.Read(ref _lastPersistMs) < interval.TotalMilliseconds)
                {
                    continue;
                }

                await _trackingLock.WaitAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    if (_doc.Lease is not null)
                    {
                        await PersistLockedAsync(cancellationToken, renewLease: true).ConfigureAwait(false);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // A failed renewal is retried at the next beat or checkpoint, which also
                    // notices a lost lease.
                    _runner.Log?.Invoke($"Lease renewal failed: {CosmosErrors.FirstLine(ex.Message)}");
                }
                finally
                {
                    _trackingLock.Release();
                }
            }
        }
    }

    private sealed class StopRunException : Exception
    {
        public StopRunException(string reason)
            : base(reason)
        {
            Reason = reason;
        }

        public string Reason { get; }
    }

    private sealed class LeaseLostException : Exception
    {
        public LeaseLostException(MigrationException error)
            : base(error.Message, error)
        {
            Error = error;
        }

        public MigrationException Error { get; }
    }
}
