# B: the module end to end, in its own pwsh process (so its peak working set and CPU are its own).
# -Concurrency 0 runs at the module's defaults (the adaptive controller, capped at its default).
# -Distributed joins a distributed run of the migration (other processes run the same command);
# with -Workers N, this one process runs N workers of it, each in a thread job of its own: the
# workers share one runtime, so what they cost together is the run's coordination, not N
# processes' start and JIT (the bench shows both).
# Mode 'migrate' adds $Field to every document (Journal 'on' keeps before-images, as by default;
# 'off' is -NoJournal); mode 'undo' undoes that migration (Undo-SchemaMigration). Mode 'catchup'
# is 'migrate' watching its -Verbose messages: when the catch-up scan after the pass begins, it
# notes the time and the server's request count, so that the scan's share of the run is measured.
param($ModulePath, $Endpoint, $Key, $Database, $Container, $Field, [double] $MaxRUPerSecond = 0, [int] $Concurrency = 0, [switch] $Distributed, [string] $Journal = 'on', [string] $Mode = 'migrate', [int] $Workers = 1)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck
$run = @{ Name = "bench-$Container-$Field" }
if ($Concurrency -gt 0) { $run.MaxDegreeOfParallelism = $Concurrency }
if ($MaxRUPerSecond -gt 0) { $run.MaxRUPerSecond = $MaxRUPerSecond }
function Get-ServerRequests { (Invoke-RestMethod -Uri "$($Endpoint)_harness/stats" -SkipCertificateCheck).requests }
$catchUp = $null
if ($Mode -eq 'catchup') { $requestsAtStart = Get-ServerRequests }
# What this process spent before its first document (pwsh, the module's import, the connection):
# a per-process cost that every distributed worker pays again.
$process = [System.Diagnostics.Process]::GetCurrentProcess()
$cpuBeforeRun = $process.TotalProcessorTime.TotalSeconds
$jitMethodsBeforeRun = [System.Runtime.JitInfo]::GetCompiledMethodCount($false)
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$startedAt = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()
$status = if ($Mode -eq 'undo') {
    Undo-SchemaMigration @run -Confirm:$false
}
elseif ($Mode -eq 'catchup') {
    Start-SchemaMigration @run -Container $Container -Operation @{ AddField = $Field; Value = 1 } -NoJournal:($Journal -eq 'off') -Verbose 4>&1 | ForEach-Object {
        if ($_ -isnot [System.Management.Automation.VerboseRecord]) { $_ }
        elseif (-not $catchUp -and $_.Message -match 'catch-up scan 1 ') { $catchUp = @{ seconds = $clock.Elapsed.TotalSeconds; requests = Get-ServerRequests } }
    }
}
elseif ($Distributed -and $Workers -gt 1) {
    $jobs = 1..$Workers | ForEach-Object {
        Start-ThreadJob -ArgumentList $ModulePath, $Endpoint, $Key, $Database, $Container, $Field, $run.Name, ($Journal -eq 'off') -ScriptBlock {
            param($ModulePath, $Endpoint, $Key, $Database, $Container, $Field, $Name, $NoJournal)
            Import-Module $ModulePath
            Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck
            # Timed from here, as a worker process is timed after its import and connection.
            $startedAt = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()
            [pscustomobject]@{ StartedAt = $startedAt; Status = Start-SchemaMigration -Name $Name -Container $Container -Operation @{ AddField = $Field; Value = 1 } -NoJournal:$NoJournal -Distributed }
        }
    }
    $workerRuns = @($jobs | Wait-Job | Receive-Job -ErrorAction Stop)
    $jobs | Remove-Job
    # The run began when the first worker began (the bench times a distributed run from startedAt).
    $startedAt = ($workerRuns | Measure-Object StartedAt -Minimum).Minimum
    # Every worker returns the run's status: one of them reports it.
    $workerRuns[-1].Status
}
else {
    Start-SchemaMigration @run -Container $Container -Operation @{ AddField = $Field; Value = 1 } -NoJournal:($Journal -eq 'off') -Distributed:$Distributed
}
$seconds = $clock.Elapsed.TotalSeconds
$returnedAt = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()
if ($Mode -eq 'catchup') {
    $requestsAtEnd = Get-ServerRequests
    $catchUp = if ($catchUp) {
        [ordered]@{
            seconds = [math]::Round($seconds - $catchUp.seconds, 3); share = [math]::Round(($seconds - $catchUp.seconds) / $seconds, 4)
            requests = $requestsAtEnd - $catchUp.requests; requestShare = [math]::Round(($requestsAtEnd - $catchUp.requests) / ($requestsAtEnd - $requestsAtStart), 4)
            runRequests = $requestsAtEnd - $requestsAtStart
        }
    }
    else { [ordered]@{ seconds = 0; share = 0; requests = 0; requestShare = 0; runRequests = $requestsAtEnd - $requestsAtStart } }
}
$process.Refresh()
[ordered]@{
    mode              = "module-$Mode"
    startedAt         = $startedAt
    returnedAt        = $returnedAt
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
    cpuBeforeRun      = [math]::Round($cpuBeforeRun, 3)
    jitMethodsBeforeRun = $jitMethodsBeforeRun
    peakWorkingSetMiB = [math]::Round($process.PeakWorkingSet64 / 1MB, 1)
    # What the runtime did besides the work: allocation, collections, JIT (as the raw SDK's run reports them).
    allocatedMiB      = [math]::Round([GC]::GetTotalAllocatedBytes($false) / 1MB, 1)
    gcCount           = [GC]::CollectionCount(0)
    gen1              = [GC]::CollectionCount(1)
    gen2              = [GC]::CollectionCount(2)
    gcPauseMs         = [math]::Round([GC]::GetTotalPauseDuration().TotalMilliseconds)
    jitMs             = [math]::Round([System.Runtime.JitInfo]::GetCompilationTime($false).TotalMilliseconds)
    jitMethods        = [System.Runtime.JitInfo]::GetCompiledMethodCount($false)
    catchUp           = $catchUp
} | ConvertTo-Json -Compress
