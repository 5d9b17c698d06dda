using System;
using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;

namespace CosmosMigrations.Steps;

/// <summary>A step that acts on the container rather than on each document (AddIndex, RequireField).</summary>
public interface IContainerStep
{
    Task ExecuteAsync(ContainerStepContext context, CancellationToken cancellationToken);

    /// <summary>What the step would do, for -WhatIf; reads only.</summary>
    Task<string> PreviewAsync(TargetContainer target, CancellationToken cancellationToken);
}

/// <summary>What a container step may use. ReportStep reports the step's own progress: what it
/// is doing, and a percentage.</summary>
public sealed record ContainerStepContext(TargetContainer Target, Action<string, int?> ReportStep, Action<string>? Log);
