#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The one entry point: build, test, demo and benchmark CosmosMigrations.

.DESCRIPTION
    Run after 'dotnet tool restore' as: dotnet pwsh ./build.ps1 -Task <task>. Each task is a
    script in tools/ (one job each); this file is the list.

    Build             publishes the module into output/CosmosMigrations (importable), its hot
                      assemblies precompiled to native code for -ReadyToRun's platform in
                      bin/<platform>/ (the IL beside them loads on every other platform).
                      tools/Build-Module.ps1, tools/Invoke-ReadyToRun.ps1.
    Package           builds, then writes output/CosmosMigrations.<version>.nupkg (made by
                      PSResourceGet's Publish-PSResource to a folder repository: Install-PSResource
                      installs it) and output/CosmosMigrations.<version>.zip (top folder
                      CosmosMigrations, for Azure Automation), both without .pdb files, and
                      prints their sizes. tools/Build-Package.ps1.
    Test              builds and packages (npm ci and the xunit builds beside them), then runs the
                      xunit suites (the engine's, and the local server's own) and Pester side by
                      side in three lanes, each against a local Cosmos DB server of its own (unless
                      COSMOS_ENDPOINT and COSMOS_KEY name another server: then one lane after the
                      other against it), stops the servers, prints 'N passed, N failed' and exits
                      non-zero on any failure. Results: output/test-results.
                      tools/Invoke-Tests.ps1, tools/Invoke-TestLane.ps1.
    Demo              starts the local server, seeds sample data, runs the sample migrations
                      with progress and shows Get-MigrationStatus; the server keeps running, and
                      the task says so, how to connect to it and how to stop it. tools/Invoke-Demo.ps1.
    Bench             the benchmark: the module against the raw SDK and a bulk peer, CPU, scale,
                      fairness, distributed runs, the RU budget, the journal, a move, the import;
                      table, goals and JSON in output/bench/. tools/Invoke-Bench.ps1 lists every
                      measure; docs/performance.md explains them.
    StartLocalCosmos  starts the local server (idempotent), prints its endpoint and seeds the
                      sample database 'demo' (users and posts in the old shape) when it is missing;
                      prints the exact Connect-CosmosMigration line (with -Endpoint when the server
                      fell back from port 8081 to another) and how to stop it. tools/LocalCosmos.psm1.
    StopLocalCosmos   stops the server that StartLocalCosmos started.

    Every task that starts the local server gives its new containers -Partitions partition key
    ranges (default 4, as a large container has: the suites run on several ranges).

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Package', 'Test', 'Demo', 'Bench', 'StartLocalCosmos', 'StopLocalCosmos')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # Pester tests to run (files or folders under tests/Pester, separated by commas); all by default.
    [string] $PesterPath,

    # Bench: documents of each condition (the same documents for A, B and C).
    [int] $Documents = 20000,

    # Bench: runs of A and of B per condition (taking turns); their medians are compared.
    [ValidateRange(1, 9)]
    [int] $Repeat = 3,

    # Bench: documents of the scale run (B at its defaults, compared with its run over -Documents).
    [int] $LargeDocuments = 200000,

    # Bench: the second size of the distributed comparison (the first is -Documents).
    [int] $DistributedDocuments = 60000,

    # Bench: the sections to run (tools/Invoke-Bench.ps1 -Section), all by default; e.g. Distributed.
    [string[]] $BenchSection,

    # The local server: partition key ranges of every new container (tests/LocalCosmos/README.md).
    [ValidateRange(1, 64)]
    [int] $Partitions = 4,

    # The platform whose native code the build adds to the module's hot assemblies: 'host' (this
    # machine's), a runtime identifier (linux-x64, win-x64, osx-arm64, …), or 'none' (IL only).
    [ValidatePattern('^(host|none|(linux|win|osx)-(x64|arm64))$')]
    [string] $ReadyToRun = 'host'
)

$ErrorActionPreference = 'Stop'
$tools = Join-Path $PSScriptRoot 'tools'
$build = @{ Configuration = $Configuration; ReadyToRun = $ReadyToRun }
$server = @{ Configuration = $Configuration; Partitions = $Partitions }

switch ($Task) {
    'Build' { & "$tools/Build-Module.ps1" @build }
    'Package' { & "$tools/Build-Module.ps1" @build; & "$tools/Build-Package.ps1" }
    # Builds and packages itself: npm ci and the xunit builds go beside the build.
    'Test' { & "$tools/Invoke-Tests.ps1" @build -Partitions $Partitions -PesterPath $PesterPath; exit $LASTEXITCODE }
    'Demo' { & "$tools/Build-Module.ps1" @build; & "$tools/Invoke-Demo.ps1" @server; exit $LASTEXITCODE }
    'Bench' {
        & "$tools/Build-Module.ps1" @build
        # From a shell (`dotnet pwsh ./build.ps1 -BenchSection Distributed,Journal`) the list comes as one word.
        $sections = if ($BenchSection) { @{ Section = @($BenchSection -split ',' | ForEach-Object Trim | Where-Object { $_ }) } } else { @{} }
        & "$tools/Invoke-Bench.ps1" @server @sections -Documents $Documents -Repeat $Repeat -LargeDocuments $LargeDocuments -DistributedDocuments $DistributedDocuments
    }
    'StartLocalCosmos' {
        Import-Module "$tools/LocalCosmos.psm1"
        $state = Start-LocalCosmos @server
        Initialize-SampleDatabase $state $Configuration
        Write-LocalCosmosNote $state
    }
    'StopLocalCosmos' { Import-Module "$tools/LocalCosmos.psm1"; Stop-LocalCosmos }
}
