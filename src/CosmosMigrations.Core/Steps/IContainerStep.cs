using CosmosMigrations.Connection;
using CosmosMigrations.Journal;

namespace CosmosMigrations.Steps;

/// <summary>A step that acts on the container rather than on each document (AddIndex, RequireField).</summary>
internal interface IContainerStep
{
    Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken);

    /// <summary>What the step would do, for -WhatIf; reads only.</summary>
    Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken);
}

/// <summary>What a container step may use. ReportStep reports the step's own progress: what it
/// is doing, and a percentage.</summary>
internal sealed record ContainerStepContext(TargetContainer Target, Action<string, int?> ReportStep, Action<string>? Log)
{
    /// <summary>The step's place in its migration (0-based).</summary>
    public int Step { get; init; }

    /// <summary>Makes a before-image durable (in the tracking document) before the step changes
    /// the container; null when the run keeps no before-images (-NoJournal).</summary>
    public Func<IndexImage, CancellationToken, Task>? RecordIndexImage { get; init; }

    /// <summary>Counts something an undo left alone because it changed since the migration.</summary>
    public Func<string, CancellationToken, Task>? ReportConflict { get; init; }
}
