<#
.SYNOPSIS
    build.ps1 -Task Test: builds and packages the module (npm ci and the xunit builds beside them),
    then runs the xunit suites and Pester side by side in three lanes (tools/Invoke-TestLane.ps1),
    each against a local Cosmos DB server of its own, stops the servers, prints 'N passed, N
    failed' and exits non-zero on any failure.

.DESCRIPTION
    When COSMOS_ENDPOINT and COSMOS_KEY name another server, the lanes run one after the other
    against it. Results: output/test-results (one .trx per xunit project, pester/<file>.xml).
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')] [string] $Configuration = 'Release',
    # Pester tests to run (files or folders under tests/Pester, separated by commas); all by default.
    [string] $PesterPath,
    # The local servers: partition key ranges of every new container.
    [int] $Partitions = 4,
    [string] $ReadyToRun = 'host'
)

. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module (Join-Path $PSScriptRoot 'LocalCosmos.psm1')

# The xunit projects, built beside the packaging and run one after the other in the xunit lane.
$XunitProjects = @('tests/CosmosMigrations.Core.Tests/CosmosMigrations.Core.Tests.csproj', 'tests/LocalCosmos.Tests/LocalCosmos.Tests.csproj')

function Get-PesterModule {
    $packages = (& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
    $pester = Join-Path $packages.Trim() 'pester/5.7.1/tools/Pester.psd1'
    if (-not (Test-Path $pester)) {
        Invoke-Native dotnet @('restore', 'tests/CosmosMigrations.Core.Tests/CosmosMigrations.Core.Tests.csproj', '-v', 'q')
    }
    if (-not (Test-Path $pester)) { throw "Pester 5.7.1 was not restored to $pester." }
    return $pester
}

# The Pester files that ran longest (output/test-results/pester/*.xml) start first, so that the two
# lanes end within a short file of each other; the others follow by name. The order only balances.
$PesterLongestFirst = @('ContainerMoveWorkers', 'Distributed', 'Reliability', 'Guides', 'ContainerMove', 'Undo', 'Failures',
    'Isolation', 'Engine', 'Partitions', 'EntraId', 'Runbook', 'Readme', 'Operations', 'Net8', 'BadInput')
# Files that run against the server StartLocalCosmos names (output/localcosmos.json): the README's
# session starts it as printed and connects to it.
$PesterOnPrimaryServer = @('Readme')

function Get-PesterQueue([string] $Path) {
    $files = foreach ($one in $Path -split ',') {
        if (Test-Path $one -PathType Leaf) { Get-Item $one } else { Get-ChildItem $one -Recurse -Filter '*.Tests.ps1' }
    }
    $files | Sort-Object @{ e = { $i = [array]::IndexOf($PesterLongestFirst, $_.Name -replace '\.Tests\.ps1$'); if ($i -lt 0) { $PesterLongestFirst.Count } else { $i } } }, Name |
        ForEach-Object { [ordered]@{ path = $_.FullName; primaryOnly = ($_.Name -replace '\.Tests\.ps1$') -in $PesterOnPrimaryServer } }
}

# Runs tools/Invoke-TestLane.ps1 once per lane, each in its own pwsh (side by side, or one after the
# other), and prints their lines as they come, each after its lane's name.
function Invoke-Lanes([object[]] $Lanes, [switch] $OneAfterAnother) {
    $script = Join-Path $Root 'tools/Invoke-TestLane.ps1'
    # pwsh.dll directly: 'dotnet pwsh' would first look for its tool manifest.
    $pwsh = Join-Path $PSHOME 'pwsh.dll'
    $jobs = [System.Collections.Generic.List[object]]::new()
    $print = { param($job) Receive-Job $job -ErrorAction Continue | ForEach-Object { Write-Host "$($job.Name.PadRight(5))| $_" } }
    foreach ($lane in $Lanes) {
        $arguments = @($pwsh, '-NoProfile', '-NonInteractive', '-File', $script) + $lane.Arguments
        $job = Start-ThreadJob -Name $lane.Name -ArgumentList (, $arguments) -ScriptBlock { param($a) & dotnet @a 2>&1 | ForEach-Object { "$_" } }
        $jobs.Add($job)
        if ($OneAfterAnother) { while ($job.State -in 'NotStarted', 'Running') { & $print $job; Start-Sleep -Milliseconds 500 }; & $print $job }
    }
    while (@($jobs | Where-Object State -In 'NotStarted', 'Running').Count) {
        foreach ($job in $jobs) { & $print $job }
        Start-Sleep -Milliseconds 500
    }
    foreach ($job in $jobs) { & $print $job; Remove-Job $job }
}

# A real account or the official emulator when named: the lanes run one after the other against it.
# Else local servers, one for each lane (a fault one lane injects never reaches another), and the
# lanes side by side: xunit, and Pester in two processes.
$external = [bool]($env:COSMOS_ENDPOINT -and $env:COSMOS_KEY)
$task = [System.Diagnostics.Stopwatch]::StartNew()
$install = if (-not $external) { Start-LocalCosmosInstall }
& (Join-Path $PSScriptRoot 'Build-Module.ps1') -Configuration $Configuration -ReadyToRun $ReadyToRun
# The xunit tests build beside the packaging; before the lanes start, because the .NET 8 Pester
# test builds projects that share the Core's obj/.
Write-Host '==> Building the xunit tests (beside the packaging)' -ForegroundColor Cyan
$xunitBuild = Start-ThreadJob -ArgumentList $Root, $Configuration, $XunitProjects -ScriptBlock {
    param($root, $configuration, $projects)
    foreach ($project in $projects) {
        $output = & dotnet build (Join-Path $root $project) -c $configuration --nologo -v q 2>&1 | ForEach-Object { "$_" }
        if ($LASTEXITCODE -ne 0) { break }
    }
    [pscustomobject]@{ Exit = $LASTEXITCODE; Output = $output -join "`n" }
}
# The package too: tests/Pester/Package.Tests.ps1 installs it into a clean profile.
& (Join-Path $PSScriptRoot 'Build-Package.ps1')
$built = $xunitBuild | Wait-Job | Receive-Job
$xunitBuild | Remove-Job
if ($built.Exit -ne 0) { throw "The xunit tests did not build:`n$($built.Output)" }
$pester = Get-PesterModule
$results = Join-Path $Output 'test-results'
Remove-Item $results -Recurse -Force -ErrorAction SilentlyContinue
New-Item -ItemType Directory -Path $results -Force | Out-Null
Complete-LocalCosmosInstall $install

$queue = @(Get-PesterQueue $(if ($PesterPath) { $PesterPath } else { Join-Path $Root 'tests/Pester' }))
$queueFile = Join-Path $results 'pester-queue.json'
ConvertTo-Json -InputObject $queue | Set-Content $queueFile
$pesterArguments = @('-Kind', 'Pester', '-Results', $results, '-Configuration', $Configuration, '-PesterModule', $pester, '-ModulePath', $ModuleOut, '-Queue', $queueFile)
$xunitArguments = @('-Kind', 'Xunit', '-Name', 'xunit', '-Results', $results, '-Configuration', $Configuration, '-XunitProjects', ($XunitProjects -join ','))
$servers = @()
$lanes = @()
$passed = 0; $failed = 0
try {
    if ($external) {
        Write-Host "Testing against $env:COSMOS_ENDPOINT"
        $on = @('-Endpoint', $env:COSMOS_ENDPOINT, '-Key', $env:COSMOS_KEY) + @(if ($env:COSMOSMIGRATIONS_HARNESS -eq '1') { '-Harness' })
        $lanes = @(@{ Name = 'xunit'; Arguments = $xunitArguments + $on }, @{ Name = 'A'; Arguments = $pesterArguments + $on + @('-Name', 'A', '-Primary') })
    }
    else {
        $primary = Start-LocalCosmos -Partitions $Partitions -Configuration $Configuration; $servers += ''
        $lanes += @{ Name = 'A'; Arguments = $pesterArguments + @('-Name', 'A', '-Primary', '-Endpoint', $primary.endpoint, '-Key', $EmulatorKey, '-Harness') }
        if ($queue.Count -gt 1) {
            $second = Start-LocalCosmos -Partitions $Partitions -Name 'b' -Configuration $Configuration; $servers += 'b'
            $lanes += @{ Name = 'B'; Arguments = $pesterArguments + @('-Name', 'B', '-Endpoint', $second.endpoint, '-Key', $EmulatorKey, '-Harness') }
        }
        $unit = Start-LocalCosmos -Partitions $Partitions -Name 'xunit' -Configuration $Configuration; $servers += 'xunit'
        $lanes += @{ Name = 'xunit'; Arguments = $xunitArguments + @('-Endpoint', $unit.endpoint, '-Key', $EmulatorKey, '-Harness') }
    }
    Write-Host "==> Tests: $(($lanes | ForEach-Object { if ($_.Name -eq 'xunit') { 'xunit' } else { "Pester lane $($_.Name)" } }) -join ', ') ($($queue.Count) Pester files)" -ForegroundColor Cyan
    $before = $task.Elapsed
    Invoke-Lanes $lanes -OneAfterAnother:$external
    Write-Host "==> Lanes done in $([int]($task.Elapsed - $before).TotalSeconds) s (build, package and servers before them: $([int]$before.TotalSeconds) s)" -ForegroundColor Cyan
    foreach ($lane in $lanes) {
        $summary = Join-Path $results "$($lane.Name).json"
        if (Test-Path $summary) {
            $counts = Get-Content $summary -Raw | ConvertFrom-Json
            Write-Host "    $($lane.Name): $($counts.passed) passed, $($counts.failed) failed"
            $passed += $counts.passed; $failed += $counts.failed
        }
        else { Write-Host "    $($lane.Name): no result (the lane failed)"; $failed++ }
    }
}
finally {
    foreach ($name in $servers) { Stop-LocalCosmos $name }
}
Write-Host ''
Write-Host "$passed passed, $failed failed"
exit $(if ($failed -gt 0) { 1 } else { 0 })
