using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Documents;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;

namespace CosmosMigrations.Running;

/// <summary>-WhatIf: the run's own reading and planning (the same scan plans, ranges, page reader,
/// and each writer's <see cref="IItemWriter.PreviewAsync"/>), with every write left out, tracking
/// included. Reports how many documents would change, fail or be left alone as conflicts (an
/// undo), with a few before/after samples; container steps say what they would do.</summary>
internal sealed class DryRun
{
    private readonly MigrationDefinition _definition;
    private readonly RunOptions _options;
    private readonly TargetContainer _target;
    private readonly ResilientSender _sender;
    private readonly IProgress<MigrationProgress>? _progress;
    private readonly ProgressCounters _counters;

    public DryRun(MigrationDefinition definition, RunOptions options, TargetContainer target, ResilientSender sender, IProgress<MigrationProgress>? progress)
    {
        _definition = definition;
        _options = options;
        _target = target;
        _sender = sender;
        _progress = progress;
        _counters = new ProgressCounters(definition.Name, definition.Steps.Count);
    }

    public async Task<MigrationPreview> ExecuteAsync(CancellationToken cancellationToken)
    {
        var preview = new MigrationPreview { Name = _definition.Name, Container = _definition.Container, Steps = _definition.Steps.Select(s => s.Describe()).ToList() };
        var tally = new Tally(preview, _options);
        var notes = new List<string>();
        var pages = 0;
        for (var index = 0; index < _definition.Steps.Count && !LimitReached(pages, notes); index++)
        {
            switch (_definition.Steps[index])
            {
                case IContainerStep containerStep:
                    notes.Add(await containerStep.PreviewAsync(_target, cancellationToken).ConfigureAwait(false));
                    break;
                case ScanStep pass:
                    _counters.Step = index;
                    _counters.Activity = $"What if: {pass.Describe()}";
                    var plan = pass.Plan(new ScanContext(_target, _sender, index, null, Preview: true));
                    foreach (var range in await FeedRanges.GetAsync(plan.Source, cancellationToken).ConfigureAwait(false))
                    {
                        using var reader = new PageReader(plan.Source.Container, range, new QueryDefinition(plan.QueryText), null, _options.BatchSize, _sender);
                        while (!LimitReached(pages, notes) && await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
                        {
                            foreach (var item in page.Documents)
                            {
                                tally.Add(await plan.Writer.PreviewAsync(item, cancellationToken).ConfigureAwait(false));
                            }

                            _counters.AddScanned(page.Documents.Count);
                            // An empty page (an empty feed range) is no batch, as in a run.
                            pages += page.Documents.Count > 0 ? 1 : 0;
                            _progress?.Report(_counters.Snapshot(preview.Scanned, preview.WouldChange, preview.WouldFail, _sender.Gate!.TotalCharge, _sender.Gate.TotalCharge));
                        }
                    }

                    break;
            }
        }

        preview.RequestCharge = Math.Round(_sender.Gate!.TotalCharge, 2);
        preview.Samples = tally.Samples;
        preview.Failures = tally.Failures;
        preview.ConflictIds = tally.ConflictIds;
        preview.Notes = notes;
        return preview;
    }

    /// <summary>Counts a dry run's verdicts, keeping a few samples, failures and conflicting ids.</summary>
    private sealed class Tally
    {
        private readonly MigrationPreview _preview;
        private readonly RunOptions _options;

        public Tally(MigrationPreview preview, RunOptions options)
        {
            _preview = preview;
            _options = options;
        }

        public List<PreviewSample> Samples { get; } = new();

        public List<FailureRecord> Failures { get; } = new();

        public List<string> ConflictIds { get; } = new();

        public void Add(ItemPreview verdict)
        {
            _preview.Scanned++;
            switch (verdict.Result)
            {
                case WriteResult.Changed:
                    _preview.WouldChange++;
                    if (Samples.Count < _options.SampleCount)
                    {
                        Samples.Add(new PreviewSample(verdict.Id, Visible(verdict.Before!), Visible(verdict.After!)));
                    }

                    break;
                case WriteResult.Failed:
                    _preview.WouldFail++;
                    if (Failures.Count < _options.FailureListCap)
                    {
                        Failures.Add(new FailureRecord(verdict.Id, verdict.PartitionKey, verdict.Error ?? ""));
                    }

                    break;
                case WriteResult.Conflict:
                    _preview.WouldConflict++;
                    if (ConflictIds.Count < PageLedger.ConflictListCap)
                    {
                        ConflictIds.Add(verdict.Id);
                    }

                    break;
            }
        }
    }

    /// <summary>-MaxBatches bounds a dry run too; the notes say that the counts are partial.</summary>
    private bool LimitReached(int pages, List<string> notes)
    {
        if (_options.MaxBatches is not { } max || pages < max)
        {
            return false;
        }

        var note = $"Stopped after {pages} page(s) (-MaxBatches): the counts cover only the documents read.";
        if (!notes.Contains(note))
        {
            notes.Add(note);
        }

        return true;
    }

    /// <summary>A document as a user knows it: without the service's system properties.</summary>
    private static string Visible(JObject document) => DocumentJson.WithoutSystemProperties(document).ToString(Newtonsoft.Json.Formatting.None);
}
