using CosmosMigrations.Definitions;
using CosmosMigrations.Journal;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Running;

/// <summary>The steps of an undo, from the tracking document alone (no migration file is needed):
/// the migration's steps in reverse order, each document step by a <see cref="RestorePass"/> over its
/// journal entries (then a <see cref="JournalCleanupStep"/> that removes the records it restored from), each AddIndex step by a <see cref="RestoreIndexStep"/>. Steps that changed
/// nothing that can be undone (RequireField) have nothing in the plan.</summary>
internal static class UndoPlan
{
    public static MigrationDefinition Build(TrackingDocument tracked, JournalStore? journal, bool force)
    {
        var info = tracked.Journal ?? new JournalInfo();
        var passes = new HashSet<int>(info.Passes ?? new List<int>());
        var indexes = (info.Indexes ?? new List<IndexImage>()).ToDictionary(i => i.Step);
        var steps = new List<MigrationStep>();
        foreach (var step in passes.Concat(indexes.Keys).Distinct().OrderByDescending(s => s))
        {
            if (indexes.TryGetValue(step, out var image))
            {
                steps.Add(new RestoreIndexStep(image, force));
            }

            if (passes.Contains(step) && journal is not null)
            {
                var startedAt = tracked.Undo?.StartedAt ?? Clock.NowMs();
                steps.Add(new RestorePass(journal, step, force, startedAt));
                steps.Add(new JournalCleanupStep(journal, step, startedAt));
            }
        }

        return new MigrationDefinition(tracked.Name, tracked.Container, $"undo of {tracked.Name}", steps, tracked.Source);
    }
}
