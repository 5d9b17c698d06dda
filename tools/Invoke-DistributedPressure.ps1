<#
.SYNOPSIS
    Runs the distributed Pester suite several times in a row under pressure, and sums it up.

.DESCRIPTION
    Each run: tests/Pester/Distributed.Tests.ps1 with COSMOSMIGRATIONS_PRESSURE=1 (the shortest
    lease, 5 s, and two CPU busy loops beside the workers, so that leases are stolen and workers
    stall as on a loaded machine; the suite itself kills a worker, adds one and splits a range).
    Prints a line per run (passed, failed, each completion test's total and worst return latency)
    and writes them to output/pressure/pressure-<time>.json. Needs the built module
    (build.ps1 -Task Build); starts the local server through build.ps1 when COSMOS_ENDPOINT is unset.

.EXAMPLE
    dotnet pwsh ./tools/Invoke-DistributedPressure.ps1 -Runs 10
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 50)]
    [int] $Runs = 10
)

$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '..')
$emulatorKey = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='
if (-not ($env:COSMOS_ENDPOINT -and $env:COSMOS_KEY)) {
    & dotnet pwsh -NoProfile -File (Join-Path $root 'build.ps1') -Task StartLocalCosmos | Out-Host
    $state = Get-Content (Join-Path $root 'output/localcosmos.json') -Raw | ConvertFrom-Json
    $env:COSMOS_ENDPOINT = $state.endpoint
    $env:COSMOS_KEY = $emulatorKey
    $env:COSMOSMIGRATIONS_HARNESS = '1'
}

$packages = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
$pester = Join-Path $packages 'pester/5.7.1/tools/Pester.psd1'
$folder = New-Item -ItemType Directory -Force (Join-Path $root 'output/pressure')
$stamp = Get-Date -Format 'yyyyMMdd-HHmmss'
$results = foreach ($run in 1..$Runs) {
    $log = Join-Path $folder "run-$stamp-$run.jsonl"
    $summary = Join-Path $folder "run-$stamp-$run.json"
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$pester' -RequiredVersion 5.7.1
`$env:COSMOSMIGRATIONS_PRESSURE = '1'
`$env:COSMOSMIGRATIONS_PRESSURE_LOG = '$log'
`$config = New-PesterConfiguration
`$config.Run.Path = '$(Join-Path $root 'tests/Pester/Distributed.Tests.ps1')'
`$config.Run.PassThru = `$true
`$config.Output.Verbosity = 'Normal'
`$r = Invoke-Pester -Configuration `$config
@{ passed = `$r.PassedCount; failed = `$r.FailedCount + `$r.FailedBlocksCount + `$r.FailedContainersCount; failures = @(`$r.Failed | ForEach-Object { `$_.ExpandedName + ': ' + (`$_.ErrorRecord | Select-Object -First 1) }) } | ConvertTo-Json | Set-Content '$summary'
"@
    $started = [DateTime]::UtcNow
    & dotnet pwsh -NoProfile -NonInteractive -Command $script | Out-File (Join-Path $folder "run-$stamp-$run.log")
    $outcome = if (Test-Path $summary) { Get-Content $summary -Raw | ConvertFrom-Json } else { [pscustomobject]@{ passed = 0; failed = 1; failures = @('the run did not finish') } }
    $figures = @(if (Test-Path $log) { Get-Content $log | ConvertFrom-Json })
    $line = [pscustomobject]@{
        Run = $run
        Passed = $outcome.passed
        Failed = $outcome.failed
        Seconds = [int]([DateTime]::UtcNow - $started).TotalSeconds
        Totals = ($figures | ForEach-Object { "$($_.test)=$($_.processed)" }) -join ' '
        WorstReturnMs = ($figures | Measure-Object worstReturnMs -Maximum).Maximum
        Failures = $outcome.failures
    }
    $line | Format-Table Run, Passed, Failed, Seconds, Totals, WorstReturnMs -AutoSize | Out-Host
    $outcome.failures | ForEach-Object { Write-Host "  $_" -ForegroundColor Red }
    $line
}
$results | ConvertTo-Json -Depth 4 | Set-Content (Join-Path $folder "pressure-$stamp.json")
$good = @($results | Where-Object Failed -EQ 0).Count
Write-Host ("{0} of {1} runs passed; worst return latency {2} ms" -f $good, $Runs, ($results | Measure-Object WorstReturnMs -Maximum).Maximum)
