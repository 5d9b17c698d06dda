using CosmosMigrations.Connection;
using CosmosMigrations.Journal;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Steps;

/// <summary>A step that pages through a container and does something with each item it reads: a
/// <see cref="DocumentPass"/> reads the target's documents and changes them; an undo's
/// <see cref="RestorePass"/> reads the journal and restores the documents its entries name. Both run
/// on the same scan (feed ranges, pages in flight, checkpoints, progress).</summary>
internal abstract class ScanStep : MigrationStep
{
    /// <summary>The WHERE condition of the scan, or null to read every item.</summary>
    public abstract string? ScanCondition { get; }

    /// <summary>Whether catch-up scans can find items written behind the cursor while it ran.</summary>
    public abstract bool CanCatchUp { get; }

    public virtual string CountText => ScanCondition is null ? "SELECT VALUE COUNT(1) FROM c" : $"SELECT VALUE COUNT(1) FROM c WHERE {ScanCondition}";

    /// <summary>What the scan reads, and what it does with each item.</summary>
    internal abstract ScanPlan Plan(ScanContext context);
}

/// <summary>What a scan step is given: the migration's container, the run's sender, its place in
/// the migration, the journal that keeps before-images (null: none kept), and whether this is a dry
/// run (whole documents, nothing written).</summary>
internal sealed record ScanContext(TargetContainer Target, ResilientSender Sender, int Step, JournalStore? Journal, bool Preview = false);

/// <summary>The container a scan reads, its query, and the writer of each item; Journaled when the
/// writes keep before-images; UndoRecomputes when the journal needs none of them (see
/// <see cref="DocumentPass.UndoRecomputes"/>).</summary>
internal sealed record ScanPlan(TargetContainer Source, string QueryText, IItemWriter Writer, bool Journaled = false, bool UndoRecomputes = false);

/// <summary>What a scan does with each item it reads.</summary>
internal interface IItemWriter
{
    /// <summary>Changes what the item calls for, safely against concurrent writers.</summary>
    Task<WriteOutcome> WriteAsync(JObject item, CancellationToken cancellationToken);

    /// <summary>The outcome of an item not tried again (recorded as failed earlier in the run).</summary>
    WriteOutcome Skip(JObject item);

    /// <summary>Prepares one page of items before any of its writes starts (a journaled pass makes
    /// the page's before-images durable here: write-ahead). The page's writes then go through
    /// <see cref="PageWrites.WriteAsync"/>, and <see cref="PageWrites.CompleteAsync"/> runs once
    /// they all finished, before the page is checkpointed.</summary>
    Task<PageWrites> BeginPageAsync(IReadOnlyList<JObject> items, CancellationToken cancellationToken);

    /// <summary>What <see cref="WriteAsync"/> would do, writing nothing (dry runs).</summary>
    Task<ItemPreview> PreviewAsync(JObject item, CancellationToken cancellationToken);
}

/// <summary>One page's writes, item by item (<see cref="IItemWriter.BeginPageAsync"/>).</summary>
internal abstract class PageWrites
{
    /// <summary>Writes the page's item at <paramref name="index"/>.</summary>
    public abstract Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken);

    /// <summary>Whether the write of the item at <paramref name="index"/> may change it (false when
    /// the page's plan found nothing to do, or a failure): what the page's intent records.</summary>
    public virtual bool MayChange(int index) => true;

    /// <summary>Completes when what must be durable before the page's first write is (its
    /// before-images): started when the page begins, so that the page's intent is recorded
    /// meanwhile. Every write waits for it.</summary>
    public virtual Task ReadyAsync() => Task.CompletedTask;

    /// <summary>After every write of the page: settles what the page recorded beforehand (a
    /// before-image whose change was not made is taken back).</summary>
    public virtual Task CompleteAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Items written one by one, with nothing prepared for the page as a whole.</summary>
    public static PageWrites OneByOne(IItemWriter writer, IReadOnlyList<JObject> items) => new EachItem(writer, items);

    private sealed class EachItem : PageWrites
    {
        private readonly IItemWriter _writer;
        private readonly IReadOnlyList<JObject> _items;

        public EachItem(IItemWriter writer, IReadOnlyList<JObject> items)
        {
            _writer = writer;
            _items = items;
        }

        public override Task<WriteOutcome> WriteAsync(int index, CancellationToken cancellationToken) => _writer.WriteAsync(_items[index], cancellationToken);
    }
}

/// <summary>A dry run's verdict on one item: the document before and after when it would change.</summary>
internal sealed record ItemPreview(WriteResult Result, string Id, string PartitionKey, JObject? Before = null, JObject? After = null, string? Error = null);
