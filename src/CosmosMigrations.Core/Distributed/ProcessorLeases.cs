using CosmosMigrations.Connection;
using CosmosMigrations.Requests;

namespace CosmosMigrations.Distributed;

/// <summary>The change feed processor's lease documents of a migration (their ids start with its
/// processor names, <see cref="DistributedRun.ProcessorName"/>) and the ranges' ledgers beside them
/// (<see cref="RangeLedger"/>): removed when a rerun starts a new generation, or when the migration
/// is reset, so that no stale checkpoint or count survives.</summary>
internal static class ProcessorLeases
{
    /// <summary>Deletes every lease and ledger of a migration (after a reset, or a move's undo), if the
    /// connection's lease container exists; returns how many.</summary>
    public static async Task<int> DeleteForMigrationAsync(MigrationConnection connection, string migration, CancellationToken cancellationToken)
    {
        var leases = connection.Database.GetContainer(connection.LeaseContainerName);
        try
        {
            await leases.ReadContainerAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (CosmosException ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return 0;
        }

        return await DeleteAsync(leases, migration, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Deletes the migration's leases, except those of <paramref name="keepGeneration"/>; returns how many.</summary>
    public static async Task<int> DeleteAsync(Container leases, string migration, int? keepGeneration, CancellationToken cancellationToken)
    {
        var prefix = migration + "|g";
        var ledgers = RangeLedger.Prefix(migration) + "g";
        var keep = keepGeneration is { } generation ? new[] { $"{prefix}{generation}|", $"{ledgers}{generation}|" } : Array.Empty<string>();
        var query = new QueryDefinition("SELECT c.id FROM c WHERE STARTSWITH(c.id, @prefix) OR STARTSWITH(c.id, @ledgers)")
            .WithParameter("@prefix", prefix).WithParameter("@ledgers", ledgers);
        var giveUp = new GiveUp("TransientFailuresExhausted", "Removing old change feed leases kept failing.", migration);
        var ids = (await ResilientSender.Ungated.QueryAllAsync(leases, query, giveUp, cancellationToken).ConfigureAwait(false))
            .Select(d => (string?)d["id"]).OfType<string>();

        var deleted = 0;
        foreach (var id in ids.Where(i => !keep.Any(k => i.StartsWith(k, StringComparison.Ordinal))))
        {
            using var response = await ResilientSender.Ungated.SendAsync(ct => leases.DeleteItemStreamAsync(id, new PartitionKey(id), cancellationToken: ct),
                $"Deleting lease '{id}'", cancellationToken, giveUp).ConfigureAwait(false);
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.NotFound)
            {
                deleted++;
            }
        }

        return deleted;
    }
}
