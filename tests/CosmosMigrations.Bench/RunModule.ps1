# B: the module end to end, in its own pwsh process (so its peak working set is its own).
param($ModulePath, $Endpoint, $Key, $Database, $Container, $Field, [double] $MaxRUPerSecond = 0, [int] $Concurrency = 16)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck
$run = @{ Name = "bench-$Container-$Field"; Container = $Container; Operation = @{ AddField = $Field; Value = 1 }; MaxDegreeOfParallelism = $Concurrency }
if ($MaxRUPerSecond -gt 0) { $run.MaxRUPerSecond = $MaxRUPerSecond }
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$status = Start-SchemaMigration @run
$seconds = $clock.Elapsed.TotalSeconds
[ordered]@{
    mode          = 'module'
    documents     = $status.Processed
    status        = $status.Status
    seconds       = [math]::Round($seconds, 3)
    docsPerSecond = [math]::Round($status.Processed / $seconds, 1)
    requestCharge = $status.RequestCharge
    ruPerSecond   = [math]::Round($status.RequestCharge / $status.Duration.TotalSeconds, 1)
    peakWorkingSetMiB = [math]::Round([System.Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64 / 1MB, 1)
} | ConvertTo-Json -Compress
