using CosmosMigrations.Journal;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Steps;

/// <summary>A pass's writer as the change feed engine uses it: pages of writes, and, for the count
/// of a batch a dead worker left, whether a document as it is now still needs the pass's change.</summary>
internal interface IPassWriter : IItemWriter
{
    Task<bool> NeedsChangeAsync(JObject current, CancellationToken cancellationToken);
}

/// <summary>Where a distributed pass's writes go. By default (null) each document is changed in
/// place, in the container whose change feed the pass reads (<see cref="DocumentWriter"/>); a move
/// reads the source's feed and writes its target (<see cref="Moving.MoveWrites"/>).</summary>
internal interface IPassWrites
{
    /// <summary>Plans without writing (what an intent's documents still need).</summary>
    IPassWriter Planner { get; }

    /// <summary>The writer of one feed range, sending through its lane of the run's gate.</summary>
    IPassWriter ForRange(ResilientSender sender, JournalStore? journal, int step);

    /// <summary>True when the writes are copies: a copy writes every version it is given and cannot
    /// tell from a document that it was already copied, so its batches are counted by source
    /// version (<see cref="Distributed.CopiedVersions"/>): each version once, however often the
    /// feed delivers it.</summary>
    bool CountsByVersion { get; }

    /// <summary>True when the pass is a move's copy: the run starts on a move's tracking document
    /// (<see cref="Tracking.StartRequest.Move"/>), which a plain start refuses.</summary>
    bool IsMove { get; }
}
