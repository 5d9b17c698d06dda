namespace CosmosMigrations.Running;

/// <summary>What one call of the runner did (the status object's Outcome, by name).</summary>
internal enum RunOutcome
{
    /// <summary>Ran from the first step, or from the first document again (-Force), to the end.</summary>
    Completed,

    /// <summary>Went on from a checkpoint (after a failure, a stop or an expired lease) to the end.</summary>
    Resumed,

    /// <summary>Already completed: nothing ran.</summary>
    Skipped,

    /// <summary>Stopped between pages (Stop-SchemaMigration, -MaxDuration, -MaxBatches, Ctrl+C):
    /// cancelled, resumable.</summary>
    Stopped,

    /// <summary>Failed: the error says why; resumable once fixed.</summary>
    Failed,

    /// <summary>Another runner took the migration over (this run's lease had expired); this run
    /// stopped without writing.</summary>
    LeaseLost,
}
