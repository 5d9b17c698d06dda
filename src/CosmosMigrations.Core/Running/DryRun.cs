using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Definitions;
using CosmosMigrations.Operations;
using CosmosMigrations.Requests;
using CosmosMigrations.Scanning;
using CosmosMigrations.Steps;
using Microsoft.Azure.Cosmos;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Running;

/// <summary>-WhatIf: the run's own reading and planning (the same ranges, page reader, and
/// <see cref="DocumentWriter.PlanAsync"/>), with every write left out, tracking included. Reports
/// how many documents would change or fail, with a few before/after samples; container steps say
/// what they would do.</summary>
internal sealed class DryRun
{
    private static readonly string[] SystemProperties = { "_rid", "_self", "_etag", "_attachments", "_ts", "_lsn" };

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
        var samples = new List<PreviewSample>();
        var failures = new List<FailureRecord>();
        var notes = new List<string>();
        var pages = 0;
        for (var index = 0; index < _definition.Steps.Count && !LimitReached(pages, notes); index++)
        {
            switch (_definition.Steps[index])
            {
                case IContainerStep containerStep:
                    notes.Add(await containerStep.PreviewAsync(_target, cancellationToken).ConfigureAwait(false));
                    break;
                case DocumentPass pass:
                    _counters.Step = index;
                    _counters.Activity = $"What if: {pass.Describe()}";
                    var writer = new DocumentWriter(_target, pass, _sender);
                    foreach (var range in await FeedRanges.GetAsync(_target, cancellationToken).ConfigureAwait(false))
                    {
                        using var reader = new PageReader(_target.Container, range, new QueryDefinition(pass.QueryText), null, _options.BatchSize, _sender);
                        while (!LimitReached(pages, notes) && await reader.ReadAsync(cancellationToken).ConfigureAwait(false) is { } page)
                        {
                            foreach (var document in page.Documents)
                            {
                                await PlanAsync(writer, document, preview, samples, failures, cancellationToken).ConfigureAwait(false);
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
        preview.Samples = samples;
        preview.Failures = failures;
        preview.Notes = notes;
        return preview;
    }

    private async Task PlanAsync(DocumentWriter writer, JObject document, MigrationPreview preview, List<PreviewSample> samples, List<FailureRecord> failures, CancellationToken cancellationToken)
    {
        preview.Scanned++;
        try
        {
            var edit = await writer.PlanAsync(document, cancellationToken).ConfigureAwait(false);
            if (edit.Changed)
            {
                preview.WouldChange++;
                if (samples.Count < _options.SampleCount)
                {
                    samples.Add(new PreviewSample(edit.Id, Visible(edit.Original), Visible(edit.Current)));
                }
            }
        }
        catch (DocumentOperationException ex)
        {
            preview.WouldFail++;
            if (failures.Count < _options.FailureListCap)
            {
                failures.Add(new FailureRecord((string?)document["id"] ?? "", _target.PartitionKey.Describe(document), ex.Message));
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
    private static string Visible(JObject document)
    {
        var copy = (JObject)document.DeepClone();
        foreach (var name in SystemProperties)
        {
            copy.Remove(name);
        }

        return copy.ToString(Newtonsoft.Json.Formatting.None);
    }
}
