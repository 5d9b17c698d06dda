# B: the module end to end, in its own pwsh process (so its peak working set and CPU are its own).
# -Concurrency 0 runs at the module's defaults (the adaptive controller, capped at its default).
# -Distributed joins a distributed run of the migration (other processes run the same command).
# Mode 'migrate' adds $Field to every document (Journal 'on' keeps before-images, as by default;
# 'off' is -NoJournal); mode 'undo' undoes that migration (Undo-SchemaMigration).
param($ModulePath, $Endpoint, $Key, $Database, $Container, $Field, [double] $MaxRUPerSecond = 0, [int] $Concurrency = 0, [switch] $Distributed, [string] $Journal = 'off', [string] $Mode = 'migrate')
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck
$run = @{ Name = "bench-$Container-$Field" }
if ($Concurrency -gt 0) { $run.MaxDegreeOfParallelism = $Concurrency }
if ($MaxRUPerSecond -gt 0) { $run.MaxRUPerSecond = $MaxRUPerSecond }
if ($Distributed) { $run.LeaseDuration = New-TimeSpan -Seconds 10 }
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$status = if ($Mode -eq 'undo') {
    Undo-SchemaMigration @run -Confirm:$false
}
else {
    Start-SchemaMigration @run -Container $Container -Operation @{ AddField = $Field; Value = 1 } -NoJournal:($Journal -eq 'off') -Distributed:$Distributed
}
$seconds = $clock.Elapsed.TotalSeconds
$process = [System.Diagnostics.Process]::GetCurrentProcess()
[ordered]@{
    mode              = "module-$Mode"
    journal           = $Journal
    documents         = $status.Processed
    status            = $status.Status
    seconds           = [math]::Round($seconds, 3)
    docsPerSecond     = if ($status.Processed) { [math]::Round($status.Processed / $seconds, 1) } else { 0 }
    requestCharge     = $status.RequestCharge
    ruPerSecond       = if ($status.Duration.TotalSeconds -gt 0) { [math]::Round($status.RequestCharge / $status.Duration.TotalSeconds, 1) } else { 0 }
    workers           = @($status.Workers).Count
    concurrency       = $status.Concurrency
    concurrencyReason = $status.ConcurrencyReason
    cpuSeconds        = [math]::Round($process.TotalProcessorTime.TotalSeconds, 3)
    peakWorkingSetMiB = [math]::Round($process.PeakWorkingSet64 / 1MB, 1)
    # What the runtime did besides the work: allocation, collections, JIT (as the raw SDK's run reports them).
    allocatedMiB      = [math]::Round([GC]::GetTotalAllocatedBytes($false) / 1MB, 1)
    gcCount           = [GC]::CollectionCount(0)
    gen1              = [GC]::CollectionCount(1)
    gen2              = [GC]::CollectionCount(2)
    gcPauseMs         = [math]::Round([GC]::GetTotalPauseDuration().TotalMilliseconds)
    jitMs             = [math]::Round([System.Runtime.JitInfo]::GetCompilationTime($false).TotalMilliseconds)
    jitMethods        = [System.Runtime.JitInfo]::GetCompiledMethodCount($false)
} | ConvertTo-Json -Compress
