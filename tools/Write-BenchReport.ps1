<#
.SYNOPSIS
    Prints a benchmark's results (tools/Invoke-Bench.ps1): docs/s of every condition, requests and
    RU per document, scale, CPU, fairness, distributed runs, the RU budget, the journal, the move,
    Import-Module, and the goals met or not.
#>
[CmdletBinding()]
param(
    # The results as Invoke-Bench.ps1 builds them.
    [Parameter(Mandatory)] [System.Collections.IDictionary] $Results,
    # The JSON file they were written to.
    [Parameter(Mandatory)] [string] $File
)

$ErrorActionPreference = 'Stop'
# A run of some sections (-Section) has only their results.
function Test-Result([string] $Name) { if ($Results -is [System.Collections.IDictionary]) { $Results.Contains($Name) } else { [bool]$Results.PSObject.Properties[$Name] } }
$Repeat = $Results.repeat
$concurrency = $Results.concurrencyA
Write-Host ''
if ((Test-Result 'conditions') -and @($Results.conditions).Count -gt 0) {
Write-Host "docs/s, medians of $Repeat runs (A: raw SDK at $concurrency in flight; B: the module at its defaults, before-images kept; B-NJ: -NoJournal; Bulk: pages of 100 whole-document upserts, as Cosmigrator; B$($concurrency): at $concurrency; C: the seed's loop, one run):"
$Results.conditions | ForEach-Object { [pscustomobject]$_ } | Format-Table condition, documents, A, B, @{ n = 'B-NJ'; e = { $_.BNoJournal } }, Bulk, @{ n = "B$concurrency"; e = { $_.B50 } }, C,
    @{ n = 'B/A'; e = { $_.BoverA } }, @{ n = 'B/Bulk'; e = { $_.BoverBulk } }, @{ n = "B$concurrency/A"; e = { $_.B50overA } }, @{ n = 'B/C'; e = { $_.BoverC } },
    @{ n = 'CPU s/1k A'; e = { $_.cpuPer1000A } }, @{ n = 'CPU s/1k B'; e = { $_.cpuPer1000B } }, @{ n = 'CPU B/A'; e = { $_.cpuBoverA } },
    @{ n = 'B in flight'; e = { $_.Bconcurrency -join ',' } } | Out-Host
Write-Host 'Per changed document: requests the server answered (every request of a run), and RU as each tool counted them (the local server charges 1 RU a request):'
$Results.conditions | ForEach-Object { [pscustomobject]$_ } | Format-Table condition,
    @{ n = 'req/doc A|B|B-NJ|Bulk'; e = { '{0} | {1} | {2} | {3}' -f $_.requestsPerDocument.A, $_.requestsPerDocument.B, $_.requestsPerDocument.BNoJournal, $_.requestsPerDocument.Bulk } },
    @{ n = 'RU/doc A|B|B-NJ|Bulk'; e = { '{0} | {1} | {2} | {3}' -f $_.ruPerDocument.A, $_.ruPerDocument.B, $_.ruPerDocument.BNoJournal, $_.ruPerDocument.Bulk } },
    @{ n = 'catch-up s (share)'; e = { '{0} ({1:P1})' -f $_.catchUp.seconds, $_.catchUp.share } }, @{ n = 'catch-up requests (share)'; e = { '{0} ({1:P2})' -f $_.catchUp.requests, $_.catchUp.requestShare } } | Out-Host
$s = $Results.scale
Write-Host ("Scale, B at its defaults: {0:N0} docs {1} docs/s, {2} MiB, {3} tracking requests/doc; {4:N0} docs {5} docs/s, {6} MiB, {7} (rate x{8}, memory x{9})" -f `
    $s.documents, $s.docsPerSecond, $s.peakMiB, $s.trackingPerDocument, $s.smallDocuments, $s.smallDocsPerSecond, $s.smallPeakMiB, $s.smallTrackingPerDocument, $s.docsPerSecondRatio, $s.peakMiBRatio)
Write-Host ("Start-up and connect CPU: A {0} s, B {1} s, A' {2} s (subtracted)" -f $Results.startupCpuSeconds.A, $Results.startupCpuSeconds.B, $Results.startupCpuSeconds.APwsh)
foreach ($cond in $Results.conditions) {
    Write-Host ("A' (A's loop hosted in pwsh), {0}: {1} docs/s, CPU s/1k {2} (x{3} A; B is x{4} A')" -f $cond.condition, $cond.APwsh, $cond.cpuPer1000APwsh, $cond.cpuAPwshOverA, $cond.cpuBoverAPwsh)
    if ($null -ne $cond.BPgoOff) {
        Write-Host ("B with the runtime's dynamic PGO off (DOTNET_TieredPGO=0, a runbook setting, not a default), {0}: {1} docs/s, x{2} A; CPU s/1k {3} (x{4} A)" -f $cond.condition, $cond.BPgoOff, $cond.BPgoOffOverA, $cond.cpuPer1000BPgoOff, $cond.cpuBPgoOffOverA)
    }
}
}
if (Test-Result 'fairness') {
$f = $Results.fairness
Write-Host ("Fairness, 30 % 429 on range {0}'s writes: the other three finished in {1} s (calm {2} s, slowdown {3:P1}); the hot one slowed {4:P1}" -f $f.hotRange, $f.othersStormSeconds, $f.othersCalmSeconds, $f.othersSlowdown, $f.hotSlowdown)
}
if (Test-Result 'distributed') {
Write-Host "Distributed at loopback against one process (same documents, timed alike, medians of $Repeat rounds; CPU of all processes, and before their first document; return ms: the worst):"
$Results.distributed.sizes | ForEach-Object {
    [pscustomobject]@{
        documents = $_.documents
        'one docs/s' = $_.single.docsPerSecond; '1 worker' = $_['1'].docsPerSecond; '3 workers' = $_['3'].docsPerSecond
        'x1 | x3 (0.9 | 0.8)' = '{0} | {1} (rounds {2} | {3})' -f $_['1'].ratio, $_['3'].ratio, ($_['1'].ratios -join ' '), ($_['3'].ratios -join ' ')
        # The same three workers as thread jobs of one process: the run's coordination without two more runtimes.
        '3 in one process' = '{0} docs/s, x{1} (rounds {2}), CPU {3} s, exact {4}, return {5} ms' -f $_['3one'].docsPerSecond, $_['3one'].ratio, ($_['3one'].ratios -join ' '), $_['3one'].cpuSeconds, $_['3one'].exact, $_['3one'].returnLatencyMs
        'CPU s one|1|3' = '{0} | {1} | {2}' -f $_.single.cpuSeconds, $_['1'].cpuSeconds, $_['3'].cpuSeconds
        'before 1st doc' = '{0} | {1} | {2}' -f $_.single.cpuBeforeRun, $_['1'].cpuBeforeRun, $_['3'].cpuBeforeRun
        exact = '{0} | {1}' -f $_['1'].exact, $_['3'].exact
        'return ms' = '{0} | {1}' -f $_['1'].returnLatencyMs, $_['3'].returnLatencyMs
        'own writes of reads' = '{0} | {1}' -f $_['1'].ownWritesShareOfReads, $_['3'].ownWritesShareOfReads
        'RU/doc one|1|3' = '{0} | {1} | {2}' -f $_.single.ruPerDocument, $_['1'].ruPerDocument, $_['3'].ruPerDocument
        shares = $_['3'].shares -join '/'
    }
} | Format-List | Out-Host
}
if (Test-Result 'ruBudget') {
Write-Host ("RU budget 2000 RU/s: measured {0} RU/s ({1:P1})" -f $Results.ruBudget.measuredRUPerSecond, $Results.ruBudget.ratio)
}
if (Test-Result 'journal') {
Write-Host "Journal (before-images), medians of $Repeat runs each at the module's defaults: B without, B with, U undoing the runs with"
$Results.journal | ForEach-Object { [pscustomobject]$_ } | Format-Table condition, documents, @{ n = 'B docs/s'; e = { $_.withoutDocsPerSecond } }, @{ n = '+journal'; e = { $_.withDocsPerSecond } }, @{ n = 'undo'; e = { $_.undoDocsPerSecond } },
    @{ n = 'RU/doc B|+j|undo'; e = { '{0} | {1} | {2}' -f $_.ruPerDocumentWithout, $_.ruPerDocumentWith, $_.ruPerDocumentUndo } },
    @{ n = 'req/doc B|+j|undo'; e = { '{0} | {1} | {2}' -f $_.requestsPerDocumentWithout, $_.requestsPerDocumentWith, $_.requestsPerDocumentUndo } },
    @{ n = 'records|entries'; e = { '{0} | {1}' -f $_.records, $_.entries } }, @{ n = 'bytes entry|doc'; e = { '{0} | {1}' -f $_.journalBytesPerDocument, $_.documentBytes } } | Out-Host

}
if (Test-Result 'move') {
$m = $Results.move
Write-Host ("Move of {0:N0} documents to a new key: copy {1} s ({2} docs/s, {3} RU/doc, {4} requests); cut-over {5} s, of which verification (a digest of both sides) {6} s" -f
    $m.verifiedDocuments, $m.copySeconds, $m.copyDocsPerSecond, $m.copyRUPerDocument, $m.copyRequests, $m.completeSeconds, $m.verifySeconds)
}
if (Test-Result 'import') {
Write-Host ("Import-Module: {0} ms in the module's own load context, {1} ms as a plain binary module (+{2} ms); first commands {3} / {4} ms (medians of {5})" -f
    $Results.import.importMsIsolated, $Results.import.importMsPlain, $Results.import.importMsAdded, $Results.import.firstCommandsMsIsolated, $Results.import.firstCommandsMsPlain, $Results.import.rounds)
}
Write-Host ('Goals: ' + (($Results.goals.GetEnumerator() | ForEach-Object { "$($_.Key) $(if ($_.Value) { 'met' } else { 'NOT met' })" }) -join '; '))
Write-Host "Results: $File"
