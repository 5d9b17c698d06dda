using System.Threading;
using System.Threading.Tasks;
using CosmosMigrations.Connection;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;
using Newtonsoft.Json.Linq;

namespace CosmosMigrations.Steps;

/// <summary>A step that pages through a container and does something with each item it reads: a
/// <see cref="DocumentPass"/> reads the target's documents and changes them; an undo's
/// <see cref="RestorePass"/> reads the journal and restores the documents its entries name. Both run
/// on the same scan (feed ranges, pages in flight, checkpoints, progress).</summary>
public abstract class ScanStep : MigrationStep
{
    /// <summary>The WHERE condition of the scan, or null to read every item.</summary>
    public abstract string? ScanCondition { get; }

    /// <summary>Whether catch-up scans can find items written behind the cursor while it ran.</summary>
    public abstract bool CanCatchUp { get; }

    public string CountText => ScanCondition is null ? "SELECT VALUE COUNT(1) FROM c" : $"SELECT VALUE COUNT(1) FROM c WHERE {ScanCondition}";

    /// <summary>What the scan reads, and what it does with each item.</summary>
    internal abstract ScanPlan Plan(ScanContext context);
}

/// <summary>What a scan step is given: the migration's container, the run's sender, its place in
/// the migration, the journal that keeps before-images (null: none kept), and whether this is a dry
/// run (whole documents, nothing written).</summary>
internal sealed record ScanContext(TargetContainer Target, ResilientSender Sender, int Step, JournalStore? Journal, bool Preview = false);

/// <summary>The container a scan reads, its query, and the writer of each item; Journaled when the
/// writes keep before-images.</summary>
internal sealed record ScanPlan(TargetContainer Source, string QueryText, IItemWriter Writer, bool Journaled = false);

/// <summary>What a scan does with each item it reads.</summary>
public interface IItemWriter
{
    /// <summary>Changes what the item calls for, safely against concurrent writers.</summary>
    Task<WriteOutcome> WriteAsync(JObject item, CancellationToken cancellationToken);

    /// <summary>The outcome of an item not tried again (recorded as failed earlier in the run).</summary>
    WriteOutcome Skip(JObject item);

    /// <summary>What <see cref="WriteAsync"/> would do, writing nothing (dry runs).</summary>
    Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken);
}

/// <summary>A dry run's verdict on one item: the document before and after when it would change.</summary>
public sealed record ItemPreview(WriteResult Result, string Id, string PartitionKey, JObject? Before = null, JObject? After = null, string? Error = null);
