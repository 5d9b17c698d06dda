using CosmosMigrations.Connection;
using CosmosMigrations.Distributed;
using CosmosMigrations.Errors;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Moving;

/// <summary>What a move's status adds to a migration's: the lag (read from the change feed
/// estimator on the move's leases when the status is read), the rate (from two samples of the
/// documents read, which every copying process refreshes every <see cref="SampleInterval"/>), and
/// the time remaining at that rate.</summary>
internal static class MoveLiveStatus
{
    public static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(5);

    /// <summary>Adds a sample of <c>scanned</c> to the move's record unless one is younger than
    /// the interval (several workers sample one document); false when nothing is to be written.</summary>
    public static bool Sample(TrackingDocument document, long now)
    {
        if (MoveRecord.Of(document) is not { } record || document.Status != TrackingStatus.Running)
        {
            return false;
        }

        var samples = record.RateSamples ?? new List<RateSample>();
        if (samples.Count > 0 && now - samples[samples.Count - 1].At < SampleInterval.TotalMilliseconds * 0.8)
        {
            return false;
        }

        samples.Add(new RateSample { At = now, Scanned = document.Scanned });
        record.RateSamples = samples.Skip(Math.Max(0, samples.Count - 2)).ToList();
        record.WriteTo(document);
        return true;
    }

    /// <summary>Documents read from the source's change feed per second between the two samples.</summary>
    public static double? Rate(MoveRecord record)
    {
        if (record.RateSamples is not { Count: 2 } samples || samples[1].At <= samples[0].At || samples[1].Scanned < samples[0].Scanned)
        {
            return null;
        }

        return Math.Round((samples[1].Scanned - samples[0].Scanned) * 1000.0 / (samples[1].At - samples[0].At), 1);
    }

    /// <summary>Fills <paramref name="status"/>'s Lag, DocumentsPerSecond and Remaining for a move
    /// (nothing for another migration). A lag that cannot be read leaves Lag null: a status is
    /// never refused for it.</summary>
    public static async Task AddAsync(MigrationConnection connection, MigrationStatus status, TrackingDocument document, CancellationToken cancellationToken)
    {
        if (MoveRecord.Of(document) is not { } record)
        {
            return;
        }

        var phase = MovePhase.Of(document);
        if (phase == MovePhase.Completed)
        {
            status.Lag = 0;
            status.Remaining = null;
            return;
        }

        if (phase == MovePhase.Undoing)
        {
            return;
        }

        var lag = await LagAsync(connection, document, record, cancellationToken).ConfigureAwait(false);
        var rate = Rate(record);
        status.Lag = lag;
        status.DocumentsPerSecond = rate ?? status.DocumentsPerSecond;
        status.Remaining = lag == 0 ? TimeSpan.Zero
            : document.Status == TrackingStatus.Running && lag is > 0 && rate is > 0 ? TimeSpan.FromSeconds(Math.Ceiling(lag.Value / rate.Value))
            : null;
    }

    private static async Task<long?> LagAsync(MigrationConnection connection, TrackingDocument document, MoveRecord record, CancellationToken cancellationToken)
    {
        try
        {
            var leases = connection.Database.GetContainer(connection.LeaseContainerName);
            var source = connection.Database.GetContainer(record.Source);
            var processor = DistributedRun.ProcessorName(document.Name, document.Generation ?? 1, 0);
            return await new CatchUpWatch(source, leases, processor).LagAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
        {
            return null;
        }
        catch (MigrationException)
        {
            return null;
        }
    }
}
