using CosmosMigrations.Documents;
using CosmosMigrations.Requests;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

/// <summary>Starts a pass's change feed processor so that workers starting together do not sit a
/// quarter of a minute out. The SDK initializes a processor's lease store under a lock, and an
/// instance that finds the lock taken sleeps 15 s before it looks again (its bootstrapper's sleep
/// time, which no option sets): of several workers starting a pass at once, all but one joined
/// 15 s late, and on a run shorter than that, only to see it end. So one worker claims the start
/// (a document beside the leases, created once a pass), starts its processor and marks the claim
/// started; the others wait for that mark, then start theirs on an initialized store. A claim not
/// marked within <see cref="ClaimWait"/> (its worker died starting) is passed over: the SDK's own
/// lock then decides, as it did before.</summary>
internal sealed class ProcessorStart
{
    /// <summary>How long a claim may go unmarked before the others start anyway (the SDK's own
    /// initialization lock lasts as long).</summary>
    public static readonly TimeSpan ClaimWait = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Look = TimeSpan.FromMilliseconds(200);

    private readonly Container _leases;
    private readonly string _id;
    private readonly string _worker;
    private readonly TimeProvider _time;
    private readonly Action<string>? _log;
    private readonly GiveUp _giveUp;

    public ProcessorStart(Container leases, string processorName, string worker, TimeProvider time, Action<string>? log)
    {
        _leases = leases;
        _id = ClaimId(processorName);
        _worker = worker;
        _time = time;
        _log = log;
        _giveUp = new GiveUp("TransientFailuresExhausted", "Starting the change feed processor kept failing.", processorName);
    }

    /// <summary>The claim's id: the processor's name (which ends with '|'; the SDK's lease ids follow
    /// it with resource ids) and "start". Removed with the leases (<see cref="ProcessorLeases"/>).</summary>
    public static string ClaimId(string processorName) => processorName + "start";

    /// <summary>Runs <paramref name="start"/> (the processor's start) first if this worker claims
    /// the pass's start, else once the claimant has started (or its claim went stale).</summary>
    public async Task StartAsync(Func<Task> start, CancellationToken cancellationToken)
    {
        var claim = await ReadAsync(cancellationToken).ConfigureAwait(false);
        if (claim is null)
        {
            if (await TryClaimAsync(cancellationToken).ConfigureAwait(false))
            {
                await start().ConfigureAwait(false);
                await MarkStartedAsync(cancellationToken).ConfigureAwait(false);
                return;
            }

            claim = await ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        if (claim is not null && !IsStarted(claim))
        {
            _log?.Invoke($"Waiting for worker {(string?)claim["worker"]} to start the change feed processor's lease store.");
        }

        while (claim is not null && !IsStarted(claim) && _time.NowMs() - ((long?)claim["claimedAt"] ?? 0) < ClaimWait.TotalMilliseconds)
        {
            await Task.Delay(Look, _time, cancellationToken).ConfigureAwait(false);
            claim = await ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        await start().ConfigureAwait(false);
    }

    private static bool IsStarted(JObject claim) => (bool?)claim["started"] == true;

    private async Task<JObject?> ReadAsync(CancellationToken cancellationToken)
    {
        using var response = await ResilientSender.Ungated.SendAsync(ct => _leases.ReadItemStreamAsync(_id, new PartitionKey(_id), cancellationToken: ct),
            "Reading the processor's start", cancellationToken, _giveUp).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return DocumentJson.ReadObject(response.Content);
    }

    private async Task<bool> TryClaimAsync(CancellationToken cancellationToken)
    {
        var claim = new JObject { ["id"] = _id, ["worker"] = _worker, ["claimedAt"] = _time.NowMs(), ["started"] = false };
        using var response = await ResilientSender.Ungated.SendAsync(() => DocumentJson.ToStream(claim),
            (body, ct) => _leases.CreateItemStreamAsync(body, new PartitionKey(_id), cancellationToken: ct),
            "Claiming the processor's start", cancellationToken, _giveUp).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            return false;
        }

        response.EnsureSuccessStatusCode();
        return true;
    }

    private async Task MarkStartedAsync(CancellationToken cancellationToken)
    {
        using var response = await ResilientSender.Ungated.SendAsync(ct => _leases.PatchItemStreamAsync(_id, new PartitionKey(_id), new[] { PatchOperation.Set("/started", true) }, cancellationToken: ct),
            "Marking the processor started", cancellationToken, _giveUp).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            // Not fatal: the others start when the claim goes stale, through the SDK's own lock.
            _log?.Invoke($"Could not mark the change feed processor started ({(int)response.StatusCode}); other workers start within {ClaimWait.TotalSeconds:0} s.");
        }
    }
}
