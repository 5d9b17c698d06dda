namespace CosmosMigrations;

/// <summary>What a dry run (-WhatIf) found: how many documents would change, with a few samples.</summary>
public sealed class MigrationPreview
{
    public string Name { get; set; } = "";

    public string Container { get; set; } = "";

    public long Scanned { get; set; }

    public long WouldChange { get; set; }

    public long WouldFail { get; set; }

    /// <summary>An undo: documents that changed since the migration, which it would leave alone (without -Force).</summary>
    public long WouldConflict { get; set; }

    /// <summary>A few of their ids.</summary>
    public IReadOnlyList<string> ConflictIds { get; set; } = Array.Empty<string>();

    public double RequestCharge { get; set; }

    public IReadOnlyList<string> Steps { get; set; } = Array.Empty<string>();

    public IReadOnlyList<PreviewSample> Samples { get; set; } = Array.Empty<PreviewSample>();

    public IReadOnlyList<FailureRecord> Failures { get; set; } = Array.Empty<FailureRecord>();

    /// <summary>Steps a dry run reports without reading documents (index changes, gates).</summary>
    public IReadOnlyList<string> Notes { get; set; } = Array.Empty<string>();

    public override string ToString() => $"{Name}: {WouldChange} of {Scanned} document(s) would change";
}

/// <summary>One document before and after (JSON text).</summary>
public sealed record PreviewSample(string Id, string Before, string After);
