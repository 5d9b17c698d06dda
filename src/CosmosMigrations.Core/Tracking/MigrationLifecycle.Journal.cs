using CosmosMigrations.Journal;

namespace CosmosMigrations.Tracking;

internal sealed partial class MigrationLifecycle
{
    private static JournalInfo NewJournal(string name, string container, JournalRequest? request) => new()
    {
        Id = JournalId(name, container),
        Container = request?.Container ?? "",
        Complete = request is not null,
        Ttl = request?.TtlSeconds,
        TargetRid = request?.TargetRid,
    };

    /// <summary>Another run of a migration already tracked: its changes are recorded only if every
    /// run's were; entries live as long as the shortest retention any run gave them. Changes
    /// <paramref name="copy"/>, the decision's copy of what was read.</summary>
    private static void JoinJournal(TrackingDocument copy, JournalRequest? request)
    {
        if (copy.Journal is null)
        {
            // Tracked before the journal existed: what earlier runs changed has no before-image.
            copy.Journal = NewJournal(copy.Name, copy.Container, request);
            copy.Journal.Complete = false;
            return;
        }

        if (request is null)
        {
            copy.Journal.Complete = false;
            return;
        }

        copy.Journal.Ttl = Shortest(copy.Journal.Ttl, request.TtlSeconds);
        if (copy.Journal.Container.Length == 0)
        {
            copy.Journal.Container = request.Container;
        }

        copy.Journal.TargetRid ??= request.TargetRid;
    }

    /// <summary>An undone migration run again as new: entries an undo left (documents in conflict)
    /// are still there and keep their retention; otherwise the journal starts empty.</summary>
    private static JournalInfo RestartJournal(TrackingDocument existing, JournalRequest? request)
    {
        var old = existing.Journal;
        var fresh = NewJournal(existing.Name, existing.Container, request);
        if (old is null)
        {
            return fresh;
        }

        fresh.Id = old.Id;
        fresh.Container = request?.Container ?? old.Container;
        if (Unresolved(existing) > 0)
        {
            fresh.Ttl = Shortest(old.Ttl, fresh.Ttl);
            fresh.Since = old.Since;
            fresh.Passes = old.Passes;
            fresh.Indexes = old.Indexes;
        }

        return fresh;
    }

    /// <summary>The journal id of a migration: the same for the same name on the same container, so
    /// that the before-images of a run whose tracking was reset (Reset-SchemaMigration) still belong
    /// to the migration that starts over, and never to one of the same name on another container.</summary>
    public static string JournalId(string name, string container)
    {
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name + "\n" + container));
        return Convert.ToHexString(hash, 0, 16).ToLowerInvariant();
    }

    private static int? Shortest(int? a, int? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);

    /// <summary>A document pass of a journaled run begins: the journal notes the step (its entries
    /// are what an undo of this step reads) and the moment from which its entries may expire. Written
    /// with the pass's first checkpoint, before its first before-image.</summary>
    public static void NoteJournaledPass(TrackingDocument document, int step, long now, bool recomputed = false)
    {
        var journal = document.Journal ??= new JournalInfo { Id = JournalId(document.Name, document.Container) };
        journal.Since ??= now;
        journal.Passes ??= new System.Collections.Generic.List<int>();
        if (!journal.Passes.Contains(step))
        {
            journal.Passes.Add(step);
        }

        if (recomputed)
        {
            journal.Recomputed ??= new System.Collections.Generic.List<int>();
            if (!journal.Recomputed.Contains(step))
            {
                journal.Recomputed.Add(step);
            }
        }
    }

    /// <summary>An AddIndex step of a journaled run records the policy it replaces (and, once
    /// replaced, the policy the service kept), before it changes anything.</summary>
    public static void NoteIndexImage(TrackingDocument document, IndexImage image)
    {
        var journal = document.Journal ??= new JournalInfo { Id = JournalId(document.Name, document.Container) };
        journal.Indexes ??= new System.Collections.Generic.List<IndexImage>();
        journal.Indexes.RemoveAll(i => i.Step == image.Step);
        journal.Indexes.Add(image);
    }
}
