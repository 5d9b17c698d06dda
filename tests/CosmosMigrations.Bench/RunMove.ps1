# M: a move end to end in its own pwsh process: Start-ContainerMove (copy to zero lag) then
# Complete-ContainerMove (drain, reconcile deletes, verify), timed apart; the cut-over's steps are
# timed from its -Verbose messages, so the verification (both sides read for the digest) is its own
# figure. Emits one JSON line.
param($ModulePath, $Endpoint, $Key, $Database, $Container, [string] $PartitionKey = '/email')
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database $Database -SkipCertificateCheck | Out-Null
function Get-ServerRequests { (Invoke-RestMethod -Uri "$($Endpoint)_harness/stats" -SkipCertificateCheck).requests }
$name = "bench-move-$Container"
$requestsAtStart = Get-ServerRequests
$clock = [System.Diagnostics.Stopwatch]::StartNew()
$copied = Start-ContainerMove -Name $name -Container $Container -Target "$Container-moved" -PartitionKey $PartitionKey -Confirm:$false
$copySeconds = $clock.Elapsed.TotalSeconds
if ($copied.Status -ne 'copied') { throw "the copy ended '$($copied.Status)': $($copied.Message)" }
$requestsAfterCopy = Get-ServerRequests

$clock.Restart()
$marks = @{}
$done = Complete-ContainerMove -Name $name -Confirm:$false -Verbose 4>&1 | ForEach-Object {
    if ($_ -isnot [System.Management.Automation.VerboseRecord]) { $_ }
    elseif ($_.Message -like 'Reconciled deletes*') { $marks.reconciled = $clock.Elapsed.TotalSeconds }
    elseif ($_.Message -like 'Verified*') { $marks.verified = $clock.Elapsed.TotalSeconds }
    elseif ($_.Message -like 'Draining*') { $marks.draining = $clock.Elapsed.TotalSeconds }
}
$completeSeconds = $clock.Elapsed.TotalSeconds
if ($done.Status -ne 'completed') { throw "the cut-over ended '$($done.Status)'" }
$requestsAfterComplete = Get-ServerRequests
[ordered]@{
    mode                 = 'move'
    documents            = (Get-MigrationStatus -Name $name).Processed
    verifiedDocuments    = [long]($done.Message -replace '^.*same (\d+) document.*$', '$1')
    copySeconds          = [math]::Round($copySeconds, 3)
    copyDocsPerSecond    = [math]::Round($copied.Processed / $copySeconds, 1)
    copyRequestCharge    = $copied.RequestCharge
    copyRUPerDocument    = [math]::Round($copied.RequestCharge / $copied.Processed, 3)
    copyRequests         = $requestsAfterCopy - $requestsAtStart
    completeSeconds      = [math]::Round($completeSeconds, 3)
    drainReconcileSeconds = if ($marks.reconciled) { [math]::Round($marks.reconciled - $marks.draining, 3) } else { $null }
    verifySeconds        = if ($marks.verified -and $marks.reconciled) { [math]::Round($marks.verified - $marks.reconciled, 3) } else { $null }
    completeRequests     = $requestsAfterComplete - $requestsAfterCopy
    cpuSeconds           = [math]::Round([System.Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime.TotalSeconds, 3)
} | ConvertTo-Json -Compress
