<#
.SYNOPSIS
    One lane of build.ps1 -Task Test: the xunit suites, or Pester files taken one at a time from a
    queue shared with the other lanes, against the one server this lane is given.

.DESCRIPTION
    build.ps1 runs two Pester lanes and the xunit lane side by side, each against a local server of
    its own (a fault injected by one lane never reaches another), and sums their counts. A Pester
    lane takes the next file no lane has claimed yet (a claim is a file created with CreateNew,
    which one process only can do), so the lanes end within a file of each other. The lane's
    counts go to <Results>/<Name>.json as { passed, failed }.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [ValidateSet('Pester', 'Xunit')] [string] $Kind,
    [Parameter(Mandatory)] [string] $Name,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Key,
    # The server is our local harness (fault injection and hooks are available).
    [switch] $Harness,
    [Parameter(Mandatory)] [string] $Results,
    [string] $Configuration = 'Release',

    # Xunit: the test projects to run one after the other (paths from the repository root,
    # separated by commas); their counts are summed.
    [string] $XunitProjects,

    # Pester: the module Pester itself, the built module, and the queue: a JSON array of
    # { path, primaryOnly }, in the order to run (the longest files first).
    [string] $PesterModule,
    [string] $ModulePath,
    [string] $Queue,
    # This lane's server is the one output/localcosmos.json names (build.ps1 -Task StartLocalCosmos
    # finds it): only this lane runs the files marked primaryOnly.
    [switch] $Primary
)

$ErrorActionPreference = 'Stop'
$Root = Resolve-Path (Join-Path $PSScriptRoot '..')
# The tests read their server from the environment (TestHelpers.ps1, CosmosTestServer.cs).
$env:COSMOS_ENDPOINT = $Endpoint
$env:COSMOS_KEY = $Key
$env:COSMOSMIGRATIONS_HARNESS = if ($Harness) { '1' } else { $null }
$summary = Join-Path $Results "$Name.json"
$passed = 0; $failed = 0

if ($Kind -eq 'Xunit') {
    foreach ($project in $XunitProjects -split ',') {
        # One results file per project, named after it.
        $trx = [IO.Path]::GetFileNameWithoutExtension($project) + '.trx'
        & dotnet test (Join-Path $Root $project) -c $Configuration --no-build --nologo `
            --results-directory $Results --logger "trx;LogFileName=$trx" --logger 'console;verbosity=minimal'
        $exit = $LASTEXITCODE
        $before = $failed
        $file = Join-Path $Results $trx
        if (Test-Path $file) {
            $counters = ([xml](Get-Content $file -Raw)).TestRun.ResultSummary.Counters
            $passed += [int]$counters.passed
            $failed += [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        }
        if ($exit -ne 0 -and $failed -eq $before) { $failed++ }
    }
}
else {
    Import-Module $PesterModule -RequiredVersion 5.7.1
    $env:COSMOSMIGRATIONS_MODULE = $ModulePath
    $items = @(Get-Content $Queue -Raw | ConvertFrom-Json)
    $claims = "$Queue.claims"
    New-Item -ItemType Directory -Path $claims -Force | Out-Null
    $xml = Join-Path $Results 'pester'
    New-Item -ItemType Directory -Path $xml -Force | Out-Null
    for ($i = 0; $i -lt $items.Count; $i++) {
        $item = $items[$i]
        if ($item.primaryOnly -and -not $Primary) { continue }
        try { [System.IO.File]::Open((Join-Path $claims "$i"), [System.IO.FileMode]::CreateNew).Dispose() }
        catch [System.IO.IOException] { continue }
        $config = New-PesterConfiguration
        $config.Run.Path = $item.path
        $config.Run.PassThru = $true
        $config.Output.Verbosity = 'Normal'
        $config.TestResult.Enabled = $true
        $config.TestResult.OutputPath = Join-Path $xml ([IO.Path]::GetFileNameWithoutExtension($item.path) + '.xml')
        $run = Invoke-Pester -Configuration $config
        $passed += $run.PassedCount
        $failed += $run.FailedCount + $run.FailedBlocksCount + $run.FailedContainersCount
    }
}

@{ passed = $passed; failed = $failed } | ConvertTo-Json | Set-Content $summary
