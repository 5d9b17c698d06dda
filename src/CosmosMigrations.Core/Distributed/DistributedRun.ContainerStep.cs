using CosmosMigrations.Journal;
using CosmosMigrations.Running;
using CosmosMigrations.Steps;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.Distributed;

internal sealed partial class DistributedRun
{
    /// <summary>A container step runs once, in the worker that takes the tracking document's lease
    /// for it (another takes over if that one dies); the others wait for the cursor to move on.</summary>
    private async Task<string?> RunContainerStepAsync(IContainerStep containerStep, int step)
    {
        _counters.Step = step;
        _counters.Activity = ((MigrationStep)containerStep).Describe();
        while (true)
        {
            var current = await _store.GetAsync(_definition.Name, _cancellationToken).ConfigureAwait(false);
            if (current is null || current.Status != TrackingStatus.Running || (current.Cursor?.Step ?? 0) != step || current.StopRequested == true)
            {
                return null;
            }

            if (_options.MaxDuration is { } slice && _counters.Clock.Elapsed >= slice)
            {
                return "MaxDuration";
            }

            var claimed = await _store.UpdateAsync(_definition.Name, latest =>
            {
                if (latest is null || latest.Status != TrackingStatus.Running || (latest.Cursor?.Step ?? 0) != step || (latest.Lease is { } held && held.ExpiresAt > _time.NowMs()))
                {
                    return null;
                }

                latest.Lease = new Lease { Owner = _owner, ExpiresAt = _time.NowMs() + (long)_options.LeaseDuration.TotalMilliseconds };
                return latest;
            }, "step lease", _cancellationToken).ConfigureAwait(false);
            if (claimed?.Lease?.Owner.RunId == _owner.RunId)
            {
                _log?.Invoke($"Step {step + 1} of {_definition.Steps.Count}: {_counters.Activity}, run by this worker for all.");
                using var renewal = CancellationTokenSource.CreateLinkedTokenSource(_cancellationToken);
                var renewing = RenewStepLeaseAsync(renewal.Token);
                try
                {
                    await containerStep.ExecuteAsync(new ContainerStepContext(_target, ReportStep, _log)
                    {
                        Step = step,
                        RecordIndexImage = _journal.Keeps
                            ? (image, ct) => _store.UpdateAsync(_definition.Name, latest =>
                            {
                                if (latest is null)
                                {
                                    return null;
                                }

                                MigrationLifecycle.NoteIndexImage(latest, image);
                                return latest;
                            }, "journal", ct)
                            : null,
                    }, _cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    renewal.Cancel();
                    await renewing.ConfigureAwait(false);
                }

                await AdvanceAsync(step).ConfigureAwait(false);
                return null;
            }

            await _beat.HeartbeatAsync().ConfigureAwait(false);
            await Task.Delay(_beat.Interval, _time, _cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The step lease of a container step this worker runs for all (only while it holds
    /// it: the patch's filter), and this worker's heartbeat with it.</summary>
    private Task RenewStepLeaseAsync(CancellationToken cancellationToken) =>
        LeaseRenewal.RunAsync(_time, _options.LeaseDuration, null, async ct =>
        {
            await _store.TryPatchAsync(_definition.Name, new[] { PatchOperation.Set("/lease/expiresAt", _time.NowMs() + (long)_options.LeaseDuration.TotalMilliseconds) },
                $"FROM c WHERE c.lease.owner.runId = '{_owner.RunId}'", ct).ConfigureAwait(false);
            await _beat.HeartbeatAsync().ConfigureAwait(false);
        }, _log, cancellationToken);
}
