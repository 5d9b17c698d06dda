using CosmosMigrations.Errors;
using CosmosMigrations.Failures;
using CosmosMigrations.Tracking;

namespace CosmosMigrations;

/// <summary>One document a migration could not change, as Get-MigrationFailure emits it.</summary>
public sealed class MigrationFailure
{
    /// <summary>The migration's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The step that failed, counted from 1 (as "step 1 of 2" in messages).</summary>
    public int Step { get; set; }

    /// <summary>The document's id.</summary>
    public string Id { get; set; } = "";

    /// <summary>The document's partition key values as JSON text.</summary>
    public string PartitionKey { get; set; } = "";

    public FailureClass Class { get; set; }

    public string Error { get; set; } = "";

    /// <summary>Runs that tried the document and failed.</summary>
    public int Attempts { get; set; }

    /// <summary>The document as the step read it (the cmdlet gives it as a hashtable, as a
    /// transform receives it); null when it was larger than the store keeps (see <see cref="BeforeImageBytes"/>).</summary>
    public object? BeforeImage { get; set; }

    public int BeforeImageBytes { get; set; }

    /// <summary>When it failed last.</summary>
    public DateTimeOffset At { get; set; }

    internal static MigrationFailure From(FailureEntry entry) => new()
    {
        Name = entry.Migration,
        Step = entry.Step + 1,
        Id = entry.DocumentId,
        PartitionKey = entry.PartitionKey,
        Class = entry.FailureClass,
        Error = entry.Error,
        Attempts = entry.Attempts,
        BeforeImage = entry.BeforeImage,
        BeforeImageBytes = entry.BeforeImageBytes,
        At = Clock.FromMs(entry.At),
    };

    public override string ToString() => $"{Name}: {Id} ({Class})";
}
