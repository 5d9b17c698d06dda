# B: the module end to end, in its own pwsh process (so its peak working set is its own).
# Mode 'migrate' adds $Field to every document (Journal 'on' keeps before-images, as by default;
# 'off' is -NoJournal); mode 'undo' undoes that migration (Undo-SchemaMigration).
param($ModulePath, $Endpoint, $Key, $Database, $Container, $Field, [double] $MaxRUPerSecond = 0, [int] $Concurrency = 16, [string] $Journal = 'off', [string] $Mode = 'migrate')
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck
$name = "bench-$Container-$Field"
$run = @{ Name = $name; MaxDegreeOfParallelism = $Concurrency }
if ($MaxRUPerSecond -gt 0) { $run.MaxRUPerSecond = $MaxRUPerSecond }
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$status = if ($Mode -eq 'undo') {
    Undo-SchemaMigration @run -Confirm:$false
}
else {
    Start-SchemaMigration @run -Container $Container -Operation @{ AddField = $Field; Value = 1 } -NoJournal:($Journal -eq 'off')
}
$seconds = $clock.Elapsed.TotalSeconds
[ordered]@{
    mode          = "module-$Mode"
    journal       = $Journal
    documents     = $status.Processed
    status        = $status.Status
    seconds       = [math]::Round($seconds, 3)
    docsPerSecond = [math]::Round($status.Processed / $seconds, 1)
    requestCharge = $status.RequestCharge
    ruPerSecond   = [math]::Round($status.RequestCharge / $status.Duration.TotalSeconds, 1)
    peakWorkingSetMiB = [math]::Round([System.Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64 / 1MB, 1)
} | ConvertTo-Json -Compress
