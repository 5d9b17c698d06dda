#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The one entry point: build, test, demo and benchmark CosmosMigrations.

.DESCRIPTION
    Run after 'dotnet tool restore' as: dotnet pwsh ./build.ps1 -Task <task>

    Build             publishes the module into output/CosmosMigrations (importable).
    Package           builds, then writes output/CosmosMigrations.<version>.nupkg (made by
                      PSResourceGet's Publish-PSResource to a folder repository: Install-PSResource
                      installs it) and output/CosmosMigrations.<version>.zip (top folder
                      CosmosMigrations, for Azure Automation), both without .pdb files, and
                      prints their sizes.
    Test              builds and packages (npm ci and the xunit build beside them), then runs xunit
                      and Pester side by side in three lanes (xunit, and two Pester processes that
                      take the files one at a time, longest first), each against a local Cosmos DB
                      server of its own (unless COSMOS_ENDPOINT and COSMOS_KEY name another server:
                      then one lane after the other against it; tools/Invoke-TestLane.ps1), stops
                      the servers, prints 'N passed, N failed' and exits non-zero on any failure.
                      Results: output/test-results (xunit.trx, pester/<file>.xml).
    Demo              starts the local server, seeds sample data, runs the sample migrations
                      with progress and shows Get-MigrationStatus; the server keeps running, and
                      the task says so, how to connect to it and how to stop it.
    Bench             measures, side by side in one run on the local server and the same
                      documents: A the raw SDK ceiling (50 in flight), B the module end to end
                      at its real defaults (before-images kept), with -NoJournal and at 50 in
                      flight, Bulk a peer's bulk upsert loop (pages of 100 whole documents
                      upserted 100 at once, as Cosmigrator), requests and RU per changed
                      document of each, the catch-up scan's share of B's run, C the seed's one-at-a-time loop (and
                      A', A's loop hosted in pwsh, for the host's own share), at
                      loopback and with 5 ms added to every answer (A and B take turns -Repeat
                      times; medians compared); CPU per 1,000 documents of A and B (start-up
                      and connect subtracted); B over -LargeDocuments (docs/s, peak memory,
                      tracking requests per document) against its run over -Documents; RU/s
                      against -MaxRUPerSecond; fairness under a 429 storm on one range;
                      distributed runs of 1 and 3 workers beside one process, over -Documents
                      and -DistributedDocuments (CPU before the first document shown); the ms that the module's own load
                      context adds to Import-Module; the journal's cost (B without and with
                      before-images: docs/s, RU and stored bytes per document) and the undo's
                      docs/s beside the migration's. Table, goals and JSON (with the commit,
                      the machine and every run) in output/bench/; docs/performance.md explains.
    StartLocalCosmos  starts the local server (idempotent), prints its endpoint and seeds the
                      sample database 'demo' (users and posts in the old shape) when it is missing;
                      prints the exact Connect-CosmosMigration line (with -Endpoint when the server
                      fell back from port 8081 to another) and how to stop it.
    StopLocalCosmos   stops the server that StartLocalCosmos started.

    Every task that starts the local server gives its new containers -Partitions partition key
    ranges (default 4, as a large container has: the suites run on several ranges).

    Every build precompiles the module's hot assemblies (its Core and the Cosmos SDK's) to native
    code for one platform, -ReadyToRun (this machine's by default), into bin/<platform>/ beside
    the IL in bin/: the module loads the images on that platform and the IL on every other (an
    image compiled for another platform does not load at all).

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

    # The local server: partition key ranges of every new container (tests/LocalCosmos/README.md).
    [ValidateRange(1, 64)]
    [int] $Partitions = 4,

    # The platform whose native code the build adds to the module's hot assemblies: 'host' (this
    # machine's), a runtime identifier (linux-x64, win-x64, osx-arm64, …), or 'none' (IL only).
    [ValidatePattern('^(host|none|(linux|win|osx)-(x64|arm64))$')]
    [string] $ReadyToRun = 'host'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = $PSScriptRoot
$Output = Join-Path $Root 'output'
$ModuleOut = Join-Path $Output 'CosmosMigrations'
$HarnessDir = Join-Path $Root 'tests/LocalCosmos'
$StateFile = Join-Path $Output 'localcosmos.json'
$EmulatorKey = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='

function Invoke-Native {
    param([string] $File, [string[]] $Arguments, [string] $WorkingDirectory = $Root)
    Push-Location $WorkingDirectory
    try {
        # To the host: a native command's output would otherwise become the calling function's result.
        & $File @Arguments | Out-Host
        if ($LASTEXITCODE -ne 0) { throw "'$File $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
    }
    finally { Pop-Location }
}

# The assemblies on a migration's hot path. Precompiled, they spare every run the JIT's first
# compilations of them (measured on 20,000 documents: a third fewer methods compiled while the
# run goes, and less CPU per document; docs/performance.md). The rest of bin/ is start-up or
# sign-in code, or shared with PowerShell's own copies; the cmdlets (CosmosMigrations.Module)
# are few and load from bin/ by name (src/CosmosMigrations.Entry).
$ReadyToRunAssemblies = @(
    'CosmosMigrations.Core', 'Microsoft.Azure.Cosmos.Client', 'Microsoft.Azure.Cosmos.Direct',
    'Microsoft.Azure.Cosmos.Core', 'Microsoft.Azure.Cosmos.Serialization.HybridRow', 'Newtonsoft.Json', 'Azure.Core')

function Invoke-ReadyToRun([string] $Bin) {
    if ($ReadyToRun -eq 'none') { return }
    $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
    # The process's architecture, as the module's load context names its folder (an x64 pwsh can run on an arm64 OS).
    $arch = [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
    $target = if ($ReadyToRun -eq 'host') { "$os-$arch" } else { $ReadyToRun }
    try {
        # The compiler comes from NuGet at the version the SDK picks (tools/ReadyToRun).
        $project = Join-Path $Root 'tools/ReadyToRun/ReadyToRun.csproj'
        Invoke-Native dotnet @('restore', $project, '--nologo', '-v', 'q')
        $assets = Get-Content (Join-Path $Root 'tools/ReadyToRun/obj/project.assets.json') -Raw | ConvertFrom-Json -AsHashtable
        $package = @($assets.project.frameworks.Values.downloadDependencies | Where-Object { $_.name -like 'Microsoft.NETCore.App.Crossgen2.*' })[0]
        if (-not $package) { throw 'the SDK names no ReadyToRun compiler for this machine' }
        $version = $package.version.Trim('[]').Split(',')[0].Trim()
        $folder = @($assets.packageFolders.Keys)[0]
        $compiler = Join-Path $folder "$($package.name.ToLowerInvariant())/$version/tools/crossgen2$(if ($IsWindows) { '.exe' })"
        if (-not (Test-Path $compiler)) { throw "the compiler is missing at $compiler" }
        # References: the running .NET (PowerShell's own) and the module's other assemblies.
        $framework = [System.Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
        # bin/<platform>/: the loader takes an image from there on that platform only.
        $work = Join-Path $Bin $target
        Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
        New-Item -ItemType Directory -Path $work | Out-Null
        $targetOs, $targetArch = $target.Split('-')
        $targetOs = @{ win = 'windows'; linux = 'linux'; osx = 'osx' }[$targetOs]
        $assemblies = @(Get-ChildItem $Bin -Filter '*.dll')
        foreach ($name in $ReadyToRunAssemblies) {
            $source = Join-Path $Bin "$name.dll"
            if (-not (Test-Path $source)) { throw "$name.dll is not in the module" }
            $compiled = Join-Path $work "$name.dll"
            $references = $assemblies | Where-Object BaseName -NE $name | ForEach-Object { '-r', $_.FullName }
            $log = & $compiler $source -o $compiled -r (Join-Path $framework '*.dll') @references --targetos $targetOs --targetarch $targetArch -O 2>&1
            if ($LASTEXITCODE -ne 0) { throw "crossgen2 failed on $name.dll: $(($log | Select-Object -First 3) -join ' ')" }
        }
        Write-Host "    ReadyToRun: $($ReadyToRunAssemblies.Count) assemblies precompiled for $target in bin/$target"
    }
    catch {
        # The module is complete without native code (the JIT compiles it): say so and go on.
        Remove-Item (Join-Path $Bin $target) -Recurse -Force -ErrorAction SilentlyContinue
        Write-Warning "ReadyToRun skipped ($($_.Exception.Message)); the module runs on the JIT alone."
    }
}

function Invoke-Build {
    Write-Host "==> Building the module ($Configuration)" -ForegroundColor Cyan
    $publish = Join-Path $Output 'publish'
    Remove-Item $publish, $ModuleOut -Recurse -Force -ErrorAction SilentlyContinue
    $entry = Join-Path $Output 'entry'
    Remove-Item $entry -Recurse -Force -ErrorAction SilentlyContinue
    Invoke-Native dotnet @('publish', 'src/CosmosMigrations.PowerShell/CosmosMigrations.PowerShell.csproj', '-c', $Configuration, '-o', $publish, '--nologo', '-v', 'q')
    Invoke-Native dotnet @('publish', 'src/CosmosMigrations.Entry/CosmosMigrations.Entry.csproj', '-c', $Configuration, '-o', $entry, '--nologo', '-v', 'q')
    # The module's root holds the manifest, the loader and the entry assembly (the only one that
    # PowerShell's default load context sees); bin/ holds the cmdlets, the Core and every
    # dependency, loaded in the module's own AssemblyLoadContext (module/CosmosMigrations.psm1).
    $bin = Join-Path $ModuleOut 'bin'
    New-Item -ItemType Directory -Path $bin -Force | Out-Null
    # Windows-only native pieces of the Cosmos SDK (ServiceInterop) stay: they load on Windows only.
    Get-ChildItem $publish -File |
        Where-Object { $_.Name -ne 'System.Management.Automation.dll' -and $_.Extension -in '.dll', '.json', '.xml', '.pdb' } |
        Copy-Item -Destination $bin
    Get-ChildItem $entry -File -Filter 'CosmosMigrations.*' | Where-Object Extension -In '.dll', '.pdb' | Copy-Item -Destination $ModuleOut
    Copy-Item (Join-Path $Root 'module/*') -Destination $ModuleOut -Recurse -Force
    Copy-Item (Join-Path $Root 'LICENSE') -Destination $ModuleOut
    Set-ReleaseNotes (Join-Path $ModuleOut 'CosmosMigrations.psd1')
    Invoke-ReadyToRun $bin
    # Help is generated in a child process, so that this one never loads the module.
    Invoke-Native dotnet @('pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tools/New-HelpFile.ps1'), '-DocsPath', (Join-Path $Root 'docs/commands'), '-ModulePath', $ModuleOut)
    # Test data helpers for Pester and the demo (not part of the module).
    Invoke-Native dotnet @('publish', 'tests/CosmosMigrations.TestKit/CosmosMigrations.TestKit.csproj', '-c', $Configuration, '-o', (Join-Path $Output 'testkit'), '--nologo', '-v', 'q')
    Write-Host "    Module: $ModuleOut"
}

function Get-ReleaseNotes([string] $Version) {
    # The version's section of CHANGELOG.md ('## <version>' up to the next '## ').
    $changelog = Get-Content (Join-Path $Root 'CHANGELOG.md') -Raw
    $match = [regex]::Match($changelog, '(?ms)^## ' + [regex]::Escape($Version) + '[ \t]*\r?\n(.*?)(?=^## |\z)')
    if (-not $match.Success) { throw "CHANGELOG.md has no section '## $Version'." }
    $match.Groups[1].Value.Trim()
}

function Set-ReleaseNotes([string] $Manifest) {
    # The built manifest's ReleaseNotes come from CHANGELOG.md, so the two cannot drift apart.
    $version = (Import-PowerShellDataFile $Manifest).ModuleVersion
    $notes = (Get-ReleaseNotes $version) -replace "'", "''"
    $text = Get-Content $Manifest -Raw
    $marker = '# ReleaseNotes: the build copies the version''s section of CHANGELOG.md here.'
    if (-not $text.Contains($marker)) { throw "The manifest has no ReleaseNotes marker: $marker" }
    Set-Content $Manifest $text.Replace($marker, "ReleaseNotes = '$notes'") -NoNewline
}

function Invoke-Package {
    # The module as PowerShell users install it: a nupkg made by PSResourceGet's own
    # Publish-PSResource (so Install-PSResource accepts it) and, for Azure Automation, a zip whose
    # top folder is the module. Both leave out the debug symbols (.pdb).
    $version = (Import-PowerShellDataFile (Join-Path $ModuleOut 'CosmosMigrations.psd1')).ModuleVersion
    Write-Host "==> Packaging CosmosMigrations $version" -ForegroundColor Cyan
    $work = Join-Path $Output 'package'
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
    $stage = Join-Path $work 'CosmosMigrations'
    $repository = Join-Path $work 'repository'
    New-Item -ItemType Directory -Path $work, $repository | Out-Null
    Copy-Item $ModuleOut -Destination $stage -Recurse
    Get-ChildItem $stage -Recurse -File -Filter '*.pdb' | Remove-Item
    $nupkg = Join-Path $Output "CosmosMigrations.$version.nupkg"
    $zip = Join-Path $Output "CosmosMigrations.$version.zip"
    Remove-Item $nupkg, $zip -ErrorAction SilentlyContinue
    # In a child process (this one never loads the module) whose home is output/package/home, so
    # that the repository is registered there, never in the user's own list (and unregistered
    # again in any case). pwsh.dll runs directly: 'dotnet pwsh' would look for its tool under HOME.
    # Publish-PSResource validates the manifest.
    $publish = @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name CosmosMigrationsBuild -Uri '$repository' -Trusted
try { Publish-PSResource -Path '$stage' -Repository CosmosMigrationsBuild }
finally { Unregister-PSResourceRepository -Name CosmosMigrationsBuild }
"@
    $childHome = Join-Path $work 'home'
    New-Item -ItemType Directory -Path $childHome | Out-Null
    $saved = $env:HOME
    $env:HOME = $childHome
    try { Invoke-Native dotnet @((Join-Path $PSHOME 'pwsh.dll'), '-NoProfile', '-NonInteractive', '-Command', $publish) }
    finally { $env:HOME = $saved }
    $published = @(Get-ChildItem $repository -Filter '*.nupkg')
    if ($published.Count -ne 1) { throw "Publish-PSResource wrote $($published.Count) packages to $repository." }
    Move-Item $published[0].FullName $nupkg
    Compress-Archive -Path $stage -DestinationPath $zip
    foreach ($file in $nupkg, $zip) {
        Write-Host ("    {0}: {1:N1} MB ({2:N0} bytes)" -f $file, ((Get-Item $file).Length / 1MB), (Get-Item $file).Length)
    }
}

function Test-HarnessInstalled {
    # A stamp with the lock file's hash says whether the installed packages are the locked ones.
    $stamp = Join-Path $HarnessDir 'node_modules/.installed-lock-hash'
    (Test-Path $stamp) -and (Get-Content $stamp -Raw).Trim() -eq (Get-FileHash (Join-Path $HarnessDir 'package-lock.json') -Algorithm SHA256).Hash
}

function Set-HarnessInstalled {
    Set-Content -Path (Join-Path $HarnessDir 'node_modules/.installed-lock-hash') -Value (Get-FileHash (Join-Path $HarnessDir 'package-lock.json') -Algorithm SHA256).Hash
}

function Install-Harness {
    # Installs from the committed lock file.
    if (-not (Test-HarnessInstalled)) {
        Write-Host '==> Installing the local Cosmos DB server (npm ci)' -ForegroundColor Cyan
        Invoke-Native npm @('ci', '--no-audit', '--no-fund', '--loglevel=error') $HarnessDir
        Set-HarnessInstalled
    }
}

# npm ci beside the build (it waits on the network, the build on the CPU): a job whose result
# Complete-HarnessInstall waits for. $null when the locked packages are installed already.
function Start-HarnessInstall {
    if (Test-HarnessInstalled) { return $null }
    Write-Host '==> Installing the local Cosmos DB server (npm ci, beside the build)' -ForegroundColor Cyan
    Start-ThreadJob -ArgumentList $HarnessDir -ScriptBlock {
        param($directory)
        Set-Location $directory
        $output = & npm ci --no-audit --no-fund --loglevel=error 2>&1 | ForEach-Object { "$_" }
        [pscustomobject]@{ Exit = $LASTEXITCODE; Output = $output -join "`n" }
    }
}

function Complete-HarnessInstall($Job) {
    if (-not $Job) { return }
    $result = $Job | Wait-Job | Receive-Job
    $Job | Remove-Job
    if ($result.Exit -ne 0) { throw "'npm ci' failed with exit code $($result.Exit): $($result.Output)" }
    Set-HarnessInstalled
}

function Get-HarnessState([string] $File = $StateFile) {
    if (-not (Test-Path $File)) { return $null }
    $state = Get-Content $File -Raw | ConvertFrom-Json
    $process = Get-Process -Id $state.pid -ErrorAction SilentlyContinue
    if (-not $process -or $process.ProcessName -ne 'node') { return $null }
    try {
        Invoke-RestMethod -Uri "$($state.endpoint)_harness/health" -SkipCertificateCheck -TimeoutSec 5 | Out-Null
        return $state
    }
    catch { return $null }
}

# -Name: a server of the test run's own beside the one StartLocalCosmos names (output/localcosmos.json),
# with its own state file and log (output/localcosmos-<Name>.json, .log).
function Start-LocalCosmos([string] $Name) {
    $stateFile = if ($Name) { Join-Path $Output "localcosmos-$Name.json" } else { $StateFile }
    $state = Get-HarnessState $stateFile
    if ($state) {
        $running = if ($state.PSObject.Properties['partitions']) { [int]$state.partitions } else { 1 }
        if ($running -ne $Partitions) {
            throw "The local Cosmos DB server at $($state.endpoint) runs with $running partition(s), not $Partitions; stop it first (build.ps1 -Task StopLocalCosmos: its data is in memory and goes with it)."
        }
        Write-Host "Local Cosmos DB server already running: $($state.endpoint) ($running partition key ranges per container)"
        return $state
    }

    Install-Harness
    New-Item -ItemType Directory -Path $Output -Force | Out-Null
    Remove-Item $stateFile -ErrorAction SilentlyContinue
    $log = Join-Path $Output "localcosmos$(if ($Name) { "-$Name" }).log"
    # Port 8081 is the emulator's; if it is taken, the server picks a free port and says which.
    # The server writes its own log: with -RedirectStandardOutput, this pwsh would pump its output
    # and, once gone, leave a broken pipe that kills the server at its next line.
    Remove-Item $log -ErrorAction SilentlyContinue
    $arguments = @((Join-Path $HarnessDir 'server.js'), '--port', '8081', '--port-fallback', '--partitions', "$Partitions", '--state-file', $stateFile, '--log-file', $log)
    if ($IsWindows) {
        $process = Start-Process -FilePath node -PassThru -ArgumentList $arguments
    }
    else {
        # The server outlives this script: it must keep no descriptor of whoever started it. An
        # inherited lock (flock) or pipe (`| tail`) held open by it hangs every caller waiting on them.
        $start = [System.Diagnostics.ProcessStartInfo]::new('sh')
        $start.UseShellExecute = $false
        @('-c', 'for fd in /proc/$$/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && [ "$n" -lt 10 ] && eval "exec $n>&-"; done; exec node "$@" </dev/null >/dev/null 2>&1', 'sh') + $arguments |
            ForEach-Object { $start.ArgumentList.Add($_) }
        $process = [System.Diagnostics.Process]::Start($start)
    }
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ($process.HasExited) { throw "The local Cosmos DB server exited: $(Get-Content $log -Raw -ErrorAction SilentlyContinue)" }
        $state = Get-HarnessState $stateFile
        if ($state) {
            Write-Host "Local Cosmos DB server$(if ($Name) { " $Name" }): $($state.endpoint) (pid $($state.pid), $Partitions partition key ranges per container)"
            return $state
        }
        Start-Sleep -Milliseconds 200
    }
    throw 'The local Cosmos DB server did not answer within 30 s.'
}

function Initialize-SampleDatabase($State) {
    # The README's first session connects to 'demo' on this server, which keeps its data in memory
    # (empty after every start): seed it, as the demo does, when it is missing.
    $kit = Join-Path $Output 'testkit/CosmosMigrations.TestKit.dll'
    if (-not (Test-Path $kit)) {
        Invoke-Native dotnet @('publish', 'tests/CosmosMigrations.TestKit/CosmosMigrations.TestKit.csproj', '-c', $Configuration, '-o', (Join-Path $Output 'testkit'), '--nologo', '-v', 'q')
    }
    Add-Type -Path $kit
    $data = [CosmosMigrations.TestKit.TestData]::new($State.endpoint, $EmulatorKey)
    try {
        if ($data.SeedSampleDatabase('demo', 1000, 10)) {
            Write-Host "Sample database 'demo': 1,000 users and 1,000 posts in the old shape (examples/migrations brings them up to date)."
        }
        else { Write-Host "Sample database 'demo' is there already." }
    }
    finally { $data.Dispose() }
}

function Get-ConnectLine($State, [string] $Database = 'demo') {
    # -Emulator alone means https://localhost:8081/; on the port the server fell back to, name it.
    if ($State.endpoint -match '^https://localhost:8081/?$') { "Connect-CosmosMigration -Emulator -Database $Database" }
    else { "Connect-CosmosMigration -Emulator -Endpoint $($State.endpoint) -Database $Database" }
}

function Write-ServerNote($State) {
    Write-Host "Connect from pwsh:  $(Get-ConnectLine $State)"
    Write-Host "The server keeps running (its data lives in memory); stop it with: dotnet pwsh ./build.ps1 -Task StopLocalCosmos"
}

function Stop-LocalCosmos([string] $Name) {
    $stateFile = if ($Name) { Join-Path $Output "localcosmos-$Name.json" } else { $StateFile }
    if (-not (Test-Path $stateFile)) { Write-Host 'No local Cosmos DB server was started.'; return }
    $state = Get-Content $stateFile -Raw | ConvertFrom-Json
    $process = Get-Process -Id $state.pid -ErrorAction SilentlyContinue
    # Only the node process we started (the pid could have been reused).
    if ($process -and $process.ProcessName -eq 'node') {
        Stop-Process -Id $state.pid -Force
        Write-Host "Stopped the local Cosmos DB server$(if ($Name) { " $Name" }) (pid $($state.pid))."
    }
    Remove-Item $stateFile -ErrorAction SilentlyContinue
}

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

function Invoke-Tests {
    # A real account or the official emulator when named: the lanes run one after the other against it.
    # Else local servers, one for each lane (a fault one lane injects never reaches another), and the
    # lanes side by side: xunit, and Pester in two processes.
    $external = [bool]($env:COSMOS_ENDPOINT -and $env:COSMOS_KEY)
    $task = [System.Diagnostics.Stopwatch]::StartNew()
    $install = if (-not $external) { Start-HarnessInstall }
    Invoke-Build
    # The xunit tests build beside the packaging; before the lanes start, because the .NET 8 Pester
    # test builds projects that share the Core's obj/.
    Write-Host '==> Building the xunit tests (beside the packaging)' -ForegroundColor Cyan
    $xunitBuild = Start-ThreadJob -ArgumentList $Root, $Configuration -ScriptBlock {
        param($root, $configuration)
        $output = & dotnet build (Join-Path $root 'tests/CosmosMigrations.Core.Tests/CosmosMigrations.Core.Tests.csproj') -c $configuration --nologo -v q 2>&1 | ForEach-Object { "$_" }
        [pscustomobject]@{ Exit = $LASTEXITCODE; Output = $output -join "`n" }
    }
    # The package too: tests/Pester/Package.Tests.ps1 installs it into a clean profile.
    Invoke-Package
    $built = $xunitBuild | Wait-Job | Receive-Job
    $xunitBuild | Remove-Job
    if ($built.Exit -ne 0) { throw "The xunit tests did not build:`n$($built.Output)" }
    $pester = Get-PesterModule
    $results = Join-Path $Output 'test-results'
    Remove-Item $results -Recurse -Force -ErrorAction SilentlyContinue
    New-Item -ItemType Directory -Path $results -Force | Out-Null
    Complete-HarnessInstall $install

    $queue = @(Get-PesterQueue $(if ($PesterPath) { $PesterPath } else { Join-Path $Root 'tests/Pester' }))
    $queueFile = Join-Path $results 'pester-queue.json'
    ConvertTo-Json -InputObject $queue | Set-Content $queueFile
    $pesterArguments = @('-Kind', 'Pester', '-Results', $results, '-Configuration', $Configuration, '-PesterModule', $pester, '-ModulePath', $ModuleOut, '-Queue', $queueFile)
    $xunitArguments = @('-Kind', 'Xunit', '-Name', 'xunit', '-Results', $results, '-Configuration', $Configuration)
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
            $primary = Start-LocalCosmos; $servers += ''
            $lanes += @{ Name = 'A'; Arguments = $pesterArguments + @('-Name', 'A', '-Primary', '-Endpoint', $primary.endpoint, '-Key', $EmulatorKey, '-Harness') }
            if ($queue.Count -gt 1) {
                $second = Start-LocalCosmos 'b'; $servers += 'b'
                $lanes += @{ Name = 'B'; Arguments = $pesterArguments + @('-Name', 'B', '-Endpoint', $second.endpoint, '-Key', $EmulatorKey, '-Harness') }
            }
            $unit = Start-LocalCosmos 'xunit'; $servers += 'xunit'
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
    if ($failed -gt 0) { exit 1 }
}

function Invoke-Demo {
    Invoke-Build
    $state = Start-LocalCosmos
    & dotnet pwsh -NoProfile -File (Join-Path $Root 'examples/demo.ps1') -ModulePath $ModuleOut -Endpoint $state.endpoint
    $demoExit = $LASTEXITCODE
    Write-Host ''
    Write-Host "The local Cosmos DB server is still running at $($state.endpoint) with the demo's data."
    Write-ServerNote $state
    if ($demoExit -ne 0) { exit $demoExit }
}

function Invoke-Bench {
    Invoke-Build
    Invoke-Native dotnet @('build', 'tests/CosmosMigrations.Bench/CosmosMigrations.Bench.csproj', '-c', 'Release', '--nologo', '-v', 'q')
    $bench = Join-Path $Root 'tests/CosmosMigrations.Bench/bin/Release/net10.0/CosmosMigrations.Bench.dll'
    $wasRunning = [bool](Get-HarnessState)
    $state = Start-LocalCosmos
    $endpoint = $state.endpoint
    $admin = "$($endpoint)_harness/faults"
    $database = 'bench' + (Get-Date -Format 'HHmmss')
    # A's concurrency (the peers note measured the raw ceiling at 50); B runs at its defaults and at A's.
    $concurrency = 50
    function Invoke-Baseline([string[]] $Arguments) {
        $line = & dotnet $bench @Arguments | Select-Object -Last 1
        if ($LASTEXITCODE -ne 0) { throw "bench $($Arguments[0]) failed: $line" }
        $line | ConvertFrom-Json
    }
    # A' (A's loop in a pwsh process): the host's own cost, beside A and B.
    function Invoke-BaselineInPwsh([string[]] $Arguments) {
        $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/RunRawInPwsh.ps1') @Arguments | Select-Object -Last 1
        if ($LASTEXITCODE -ne 0) { throw "bench in pwsh $($Arguments[0]) failed: $line" }
        $line | ConvertFrom-Json
    }
    # B measures the module at its real defaults (before-images kept); -Journal 'off' is -NoJournal.
    # Every run notes the server's requests (all of them: page reads, writes, journal, tracking).
    function Invoke-Module([string] $Container, [string] $Field, [double] $Budget = 0, [int] $InFlight = 0, [string] $Journal = 'on', [string] $Mode = 'migrate') {
        $before = Get-TrackingRequests
        $requestsBefore = Get-ServerRequests
        $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/RunModule.ps1') $ModuleOut $endpoint $EmulatorKey $database $Container $Field $Budget $InFlight $Journal $Mode | Select-Object -Last 1
        if ($LASTEXITCODE -ne 0) { throw "bench module run failed: $line" }
        $result = $line | ConvertFrom-Json
        if ($result.status -ne $(if ($Mode -eq 'undo') { 'undone' } else { 'completed' })) { throw "bench module run ended '$($result.status)': $line" }
        $result | Add-Member trackingRequests ((Get-TrackingRequests) - $before)
        $result | Add-Member requests ((Get-ServerRequests) - $requestsBefore)
        $result
    }
    # A baseline run (A, the bulk peer) with the server's requests noted.
    function Invoke-Counted([string[]] $Arguments) {
        $requestsBefore = Get-ServerRequests
        $result = Invoke-Baseline $Arguments
        $result | Add-Member requests ((Get-ServerRequests) - $requestsBefore)
        $result
    }
    function Get-ServerRequests { (Invoke-RestMethod -Uri "$($endpoint)_harness/stats" -SkipCertificateCheck).requests }
    # Per changed document: the server's requests, and the request units the tool itself counted.
    function Get-PerDocument($Runs, [string] $Property) { [math]::Round((Get-Median @($Runs | ForEach-Object { $_.$Property / $_.documents })), 4) }
    function Set-Harness([hashtable] $Settings) {
        $null = Invoke-RestMethod -Method Post -Uri $admin -SkipCertificateCheck -ContentType 'application/json' -Body ($Settings | ConvertTo-Json)
    }
    function Get-TrackingRequests {
        # Requests to the tracking container ('migrations'), every method and status.
        $stats = Invoke-RestMethod -Uri "$($endpoint)_harness/stats" -SkipCertificateCheck
        $sum = 0
        foreach ($p in $stats.byContainer.PSObject.Properties) { if ($p.Name -like 'migrations *') { $sum += [int]$p.Value } }
        $sum
    }
    function Get-Median([double[]] $Values) {
        $sorted = @($Values | Sort-Object)
        $middle = [math]::Floor($sorted.Count / 2)
        if ($sorted.Count % 2) { $sorted[$middle] } else { ($sorted[$middle - 1] + $sorted[$middle]) / 2 }
    }
    # CPU per 1,000 documents: the run's CPU minus the same process's start-up and connect cost
    # (a run over an empty container).
    function Get-CpuPerThousand($Runs, [double] $BaselineCpu) {
        Get-Median @($Runs | ForEach-Object { [math]::Max(0.0, $_.cpuSeconds - $BaselineCpu) / $_.documents * 1000 })
    }

    $commit = (& git -C $Root rev-parse --short HEAD 2>$null)
    $dirty = [bool](& git -C $Root status --porcelain 2>$null)
    Add-Type -Path (Join-Path $Output 'testkit/CosmosMigrations.TestKit.dll')
    $kit = [CosmosMigrations.TestKit.TestData]::new($endpoint, $EmulatorKey)
    $results = [ordered]@{
        commit = "$commit$(if ($dirty) { '+changes' })"; machine = "$([Environment]::ProcessorCount) cores"; date = (Get-Date).ToString('o')
        documents = $Documents; largeDocuments = $LargeDocuments; concurrencyA = $concurrency; repeat = $Repeat; conditions = @()
    }
    try {
        Write-Host '==> start-up and connect cost (runs over an empty container)' -ForegroundColor Cyan
        Set-Harness @{}
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'empty', '0')
        $baseA = Get-Median @(1..2 | ForEach-Object { (Invoke-Baseline @('raw', $endpoint, $EmulatorKey, $database, 'empty', 'fe', "$concurrency")).cpuSeconds })
        $baseB = Get-Median @(1..2 | ForEach-Object { $i = $_; (Invoke-Module 'empty' "fe$i").cpuSeconds })
        $baseAPwsh = Get-Median @(1..2 | ForEach-Object { (Invoke-BaselineInPwsh @('raw', $endpoint, $EmulatorKey, $database, 'empty', 'fe', "$concurrency")).cpuSeconds })
        $results.startupCpuSeconds = [ordered]@{ A = $baseA; B = $baseB; APwsh = $baseAPwsh }

        foreach ($condition in @(@{ Name = 'loopback'; Latency = 0 }, @{ Name = '5 ms'; Latency = 5 })) {
            Set-Harness @{}
            $container = "c$($condition.Latency)ms"
            Write-Host "==> $($condition.Name): seeding $Documents documents" -ForegroundColor Cyan
            $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, $container, "$Documents")
            Set-Harness @{ latencyMs = $condition.Latency }
            # A, B at its defaults and B at A's concurrency take turns, each run adding its own
            # field to every document, so that the machine's drifts fall on all alike; the
            # medians are compared.
            $runsA = @(); $runsB = @(); $runsB50 = @(); $runsAPwsh = @(); $runsBNoJournal = @(); $runsBulk = @()
            for ($i = 1; $i -le $Repeat; $i++) {
                Write-Host "    A: raw SDK patch, $concurrency in flight ($i/$Repeat)"
                $runsA += Invoke-Counted @('raw', $endpoint, $EmulatorKey, $database, $container, "fa$i", "$concurrency")
                Write-Host "    Bulk: pages of 100 whole documents upserted 100 at once, as Cosmigrator runs ($i/$Repeat)"
                $runsBulk += Invoke-Counted @('bulk', $endpoint, $EmulatorKey, $database, $container, "fu$i")
                Write-Host "    A': the same, hosted in pwsh ($i/$Repeat)"
                $runsAPwsh += Invoke-BaselineInPwsh @('raw', $endpoint, $EmulatorKey, $database, $container, "fp$i", "$concurrency")
                Write-Host "    B: Start-SchemaMigration at its defaults, before-images kept ($i/$Repeat)"
                $runsB += Invoke-Module $container "fb$i"
                Write-Host "    B -NoJournal ($i/$Repeat)"
                $runsBNoJournal += Invoke-Module $container "fo$i" -Journal 'off'
                Write-Host "    B: Start-SchemaMigration -MaxDegreeOfParallelism $concurrency ($i/$Repeat)"
                $runsB50 += Invoke-Module $container "fn$i" -InFlight $concurrency
            }
            Write-Host '    C: the seed''s loop'
            $c = Invoke-Baseline @('loop', $endpoint, $EmulatorKey, $database, $container, 'fc')
            Write-Host '    B watching its catch-up scan (its share of the run)'
            $catchUp = Invoke-Module $container 'fk' -Mode 'catchup'
            $a = Get-Median ($runsA | ForEach-Object docsPerSecond)
            $b = Get-Median ($runsB | ForEach-Object docsPerSecond)
            $b50 = Get-Median ($runsB50 | ForEach-Object docsPerSecond)
            $bNoJournal = Get-Median ($runsBNoJournal | ForEach-Object docsPerSecond)
            $bulk = Get-Median ($runsBulk | ForEach-Object docsPerSecond)
            $cpuA = Get-CpuPerThousand $runsA $baseA
            $cpuB = Get-CpuPerThousand $runsB $baseB
            $cpuAPwsh = Get-CpuPerThousand $runsAPwsh $baseAPwsh
            $results.conditions += [ordered]@{
                condition = $condition.Name; documents = $Documents
                A = $a; B = $b; BNoJournal = $bNoJournal; Bulk = $bulk; B50 = $b50; C = $c.docsPerSecond
                BoverA = [math]::Round($b / $a, 2); BNoJournalOverA = [math]::Round($bNoJournal / $a, 2); BoverBulk = [math]::Round($b / $bulk, 2); B50overA = [math]::Round($b50 / $a, 2)
                requestsPerDocument = [ordered]@{ A = Get-PerDocument $runsA 'requests'; B = Get-PerDocument $runsB 'requests'; BNoJournal = Get-PerDocument $runsBNoJournal 'requests'; Bulk = Get-PerDocument $runsBulk 'requests' }
                ruPerDocument = [ordered]@{ A = Get-PerDocument $runsA 'requestCharge'; B = Get-PerDocument $runsB 'requestCharge'; BNoJournal = Get-PerDocument $runsBNoJournal 'requestCharge'; Bulk = Get-PerDocument $runsBulk 'requestCharge' }
                catchUp = $catchUp.catchUp
                BoverC = [math]::Round($b / $c.docsPerSecond, 1)
                cpuPer1000A = [math]::Round($cpuA, 3); cpuPer1000B = [math]::Round($cpuB, 3); cpuBoverA = [math]::Round($cpuB / $cpuA, 2)
                APwsh = Get-Median ($runsAPwsh | ForEach-Object docsPerSecond); cpuPer1000APwsh = [math]::Round($cpuAPwsh, 3)
                cpuAPwshOverA = [math]::Round($cpuAPwsh / $cpuA, 2); cpuBoverAPwsh = [math]::Round($cpuB / $cpuAPwsh, 2)
                BpeakMiB = Get-Median ($runsB | ForEach-Object peakWorkingSetMiB)
                BtrackingPerDocument = Get-Median ($runsB | ForEach-Object { $_.trackingRequests / $_.documents })
                Bconcurrency = @($runsB | ForEach-Object concurrency)
                BconcurrencyReason = @($runsB | ForEach-Object concurrencyReason)
                runsA = @($runsA); runsB = @($runsB); runsB50 = @($runsB50); runsAPwsh = @($runsAPwsh); runsBNoJournal = @($runsBNoJournal); runsBulk = @($runsBulk); runC = $c; runCatchUp = $catchUp
            }
        }

        Set-Harness @{}
        Write-Host "==> scale: B at its defaults over $LargeDocuments documents" -ForegroundColor Cyan
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'large', "$LargeDocuments")
        $large = Invoke-Module 'large' 'fl'
        $small = $results.conditions | Where-Object condition -EQ 'loopback'
        $results.scale = [ordered]@{
            documents = $LargeDocuments; docsPerSecond = $large.docsPerSecond; peakMiB = $large.peakWorkingSetMiB
            trackingPerDocument = [math]::Round($large.trackingRequests / $large.documents, 5)
            smallDocuments = $Documents; smallDocsPerSecond = $small.B; smallPeakMiB = $small.BpeakMiB; smallTrackingPerDocument = [math]::Round($small.BtrackingPerDocument, 5)
            docsPerSecondRatio = [math]::Round($large.docsPerSecond / $small.B, 2)
            peakMiBRatio = [math]::Round($large.peakWorkingSetMiB / $small.BpeakMiB, 3)
            run = $large
        }

        Write-Host '==> fairness: a 30 % 429 storm on the writes of one range of four' -ForegroundColor Cyan
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'fair', "$Documents")
        $ranges = @(($kit.Ranges($database, 'fair') | ConvertFrom-Json).ranges)
        $hot = $ranges[0].id
        # When each range's scan finished: polled from the tracking document's per-range cursor
        # (the EPK bounds of a cursor's feed range name the harness's range).
        function Measure-RangeFinish([string] $Field) {
            $name = "bench-fair-$Field"
            $clock = [System.Diagnostics.Stopwatch]::StartNew()
            $process = Start-Process -FilePath dotnet -PassThru -RedirectStandardOutput (Join-Path $Output "fair-$Field.json") -ArgumentList @(
                'pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/CosmosMigrations.Bench/RunModule.ps1'), $ModuleOut, $endpoint, $EmulatorKey, $database, 'fair', $Field)
            $finished = @{}
            while (-not $process.HasExited) {
                $tracking = $kit.ReadAllJson($database, 'migrations', "SELECT VALUE c.cursor.ranges FROM c WHERE c.id = '$name' AND IS_DEFINED(c.cursor.ranges)") | ConvertFrom-Json
                foreach ($cursor in @($tracking)) {
                    if (-not $cursor -or -not $cursor.done) { continue }
                    $min = ($cursor.range | ConvertFrom-Json).Range.min
                    $id = ($ranges | Where-Object minInclusive -EQ $min | Select-Object -First 1).id
                    if ($id -and -not $finished.Contains($id)) { $finished[$id] = $clock.Elapsed.TotalSeconds }
                }
                Start-Sleep -Milliseconds 100
            }
            foreach ($range in $ranges) { if (-not $finished.Contains($range.id)) { $finished[$range.id] = $clock.Elapsed.TotalSeconds } }
            $finished
        }
        Set-Harness @{}
        $calm = Measure-RangeFinish 'fq'
        Set-Harness @{ rate429 = 0.3; retryAfterMs = 10; seed = 7; methods = @('PATCH'); ranges = @("$hot"); pathPattern = '/colls/fair/docs' }
        $storm = Measure-RangeFinish 'fs'
        Set-Harness @{}
        $others = @($ranges | Where-Object id -NE $hot | ForEach-Object id)
        $calmOthers = ($others | ForEach-Object { $calm[$_] } | Measure-Object -Average).Average
        $stormOthers = ($others | ForEach-Object { $storm[$_] } | Measure-Object -Average).Average
        $results.fairness = [ordered]@{
            documents = $Documents; hotRange = $hot
            calmSeconds = $calm; stormSeconds = $storm
            othersCalmSeconds = [math]::Round($calmOthers, 2); othersStormSeconds = [math]::Round($stormOthers, 2)
            othersSlowdown = [math]::Round($stormOthers / $calmOthers - 1, 3)
            hotSlowdown = [math]::Round($storm[$hot] / $calm[$hot] - 1, 3)
        }

        # Each size: one process, then 1 and 3 -Distributed workers, on fresh copies of the same
        # documents, timed alike (first command to last return), -Repeat rounds; a round's ratios
        # are its own runs side by side, and their medians are reported. Every worker is a pwsh
        # process of its own, and pays pwsh's start, the import, the connection and the JIT again:
        # at -Documents that fixed cost is a large share of a run; at -DistributedDocuments, the
        # size where a distributed run is worth having, it is not. Both are reported.
        function Measure-Distributed([int] $Size, [int] $Count, [int] $Round) {
            $container = "dist$Count-$Size-$Round"
            $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, $container, "$Size")
            $before = Get-TrackingRequests
            $processes = 1..$Count | ForEach-Object {
                Start-Process -FilePath dotnet -PassThru -RedirectStandardOutput (Join-Path $Output "dist$Count-$_.json") -ArgumentList @(
                    'pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/CosmosMigrations.Bench/RunModule.ps1'), $ModuleOut, $endpoint, $EmulatorKey, $database, $container, 'fd', '0', '0', '-Distributed')
            }
            $processes | ForEach-Object { $_.WaitForExit() }
            $workers = 1..$Count | ForEach-Object { Get-Content (Join-Path $Output "dist$Count-$_.json") -Raw | ConvertFrom-Json }
            $seconds = (($workers | Measure-Object returnedAt -Maximum).Maximum - ($workers | Measure-Object startedAt -Minimum).Minimum) / 1000
            $tracking = $kit.ReadAllJson($database, 'migrations', "SELECT * FROM c WHERE c.id = 'bench-$container-fd'") | ConvertFrom-Json
            if ($tracking.status -ne 'completed' -or $tracking.processed -ne $Size) { throw "distributed run over $Count worker(s) ended $($tracking.status) with $($tracking.processed) documents" }
            $changed = $kit.Count($database, $container, 'IS_DEFINED(c.fd)')
            # Each run's documents go when it is measured: the server holds everything in memory,
            # and a fuller server would slow the runs that come later.
            $kit.DeleteContainer($database, $container)
            [ordered]@{
                workers = $Count; seconds = [math]::Round($seconds, 2); docsPerSecond = [math]::Round($Size / $seconds, 1)
                # Counts are a contract: processed against the documents that carry the change.
                exact = ($tracking.processed -eq $changed -and @($workers | Where-Object documents -NE $tracking.processed).Count -eq 0)
                returnLatencyMs = ($workers | Measure-Object returnedAt -Maximum).Maximum - $tracking.completedAt
                # Documents the change feed delivered per document changed: beyond 1, the run's own writes coming back.
                deliveredPerDocument = [math]::Round($tracking.scanned / $Size, 3)
                ownWritesShareOfReads = [math]::Round([math]::Max(0, $tracking.scanned - $Size) / [math]::Max(1, $tracking.scanned), 3)
                ruPerDocument = [math]::Round($tracking.requestCharge / $Size, 3)
                trackingPerDocument = [math]::Round(((Get-TrackingRequests) - $before) / $Size, 4)
                shares = @($tracking.workers.PSObject.Properties | ForEach-Object { $_.Value.processed })
                # CPU of every worker, and what they spent before their first document.
                cpuSeconds = [math]::Round(($workers | Measure-Object cpuSeconds -Sum).Sum, 2)
                cpuBeforeRun = [math]::Round(($workers | Measure-Object cpuBeforeRun -Sum).Sum, 2)
            }
        }
        $distributed = [ordered]@{ sizes = @() }
        foreach ($size in @($Documents, $DistributedDocuments | Select-Object -Unique)) {
            Write-Host "==> distributed: 1 and 3 workers at loopback over $size documents, beside one process ($Repeat rounds)" -ForegroundColor Cyan
            $rounds = foreach ($round in 1..$Repeat) {
                $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, "one$size-$round", "$size")
                $one = Invoke-Module "one$size-$round" 'fd'
                $kit.DeleteContainer($database, "one$size-$round")
                $runs = [ordered]@{
                    single = [ordered]@{ seconds = $one.seconds; docsPerSecond = $one.docsPerSecond; ruPerDocument = [math]::Round($one.requestCharge / $size, 3)
                        cpuSeconds = $one.cpuSeconds; cpuBeforeRun = $one.cpuBeforeRun; jitMethodsBeforeRun = $one.jitMethodsBeforeRun; jitMethods = $one.jitMethods }
                }
                foreach ($count in 1, 3) {
                    $run = Measure-Distributed $size $count $round
                    $run.ratio = [math]::Round($one.seconds / $run.seconds, 2)
                    $runs["$count"] = $run
                }
                $runs
            }
            $row = [ordered]@{ documents = $size; rounds = @($rounds) }
            $row.single = [ordered]@{ docsPerSecond = Get-Median @($rounds | ForEach-Object { $_.single.docsPerSecond }); cpuSeconds = Get-Median @($rounds | ForEach-Object { $_.single.cpuSeconds })
                cpuBeforeRun = Get-Median @($rounds | ForEach-Object { $_.single.cpuBeforeRun }); ruPerDocument = Get-Median @($rounds | ForEach-Object { $_.single.ruPerDocument }) }
            foreach ($count in '1', '3') {
                $of = @($rounds | ForEach-Object { $_[$count] })
                $row[$count] = [ordered]@{
                    docsPerSecond = Get-Median @($of.docsPerSecond); ratio = Get-Median @($of.ratio); ratios = @($of.ratio)
                    exact = @($of | Where-Object { -not $_.exact }).Count -eq 0
                    returnLatencyMs = ($of.returnLatencyMs | Measure-Object -Maximum).Maximum
                    ownWritesShareOfReads = Get-Median @($of.ownWritesShareOfReads); ruPerDocument = Get-Median @($of.ruPerDocument)
                    cpuSeconds = Get-Median @($of.cpuSeconds); cpuBeforeRun = Get-Median @($of.cpuBeforeRun); shares = $of[-1].shares
                }
            }
            $distributed.sizes += $row
        }
        $results.distributed = $distributed

        Write-Host '==> RU budget: 5 RU per request, -MaxRUPerSecond 2000' -ForegroundColor Cyan
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'ru', '8000')
        Set-Harness @{ requestCharge = 5 }
        $ru = Invoke-Module 'ru' 'fr' 2000
        Set-Harness @{}
        $results.ruBudget = [ordered]@{ budget = 2000; measuredRUPerSecond = $ru.ruPerSecond; ratio = [math]::Round($ru.ruPerSecond / 2000, 3) }

        # The journal: B without (-NoJournal) and with before-images (the default) take turns, each
        # run adding its own field; then each journaled run is undone (U). The local server charges
        # 1 RU a request, so RU per document here counts requests; bytes are as the service stores them.
        $results.journal = @()
        foreach ($condition in @(@{ Name = 'loopback'; Latency = 0 }, @{ Name = '5 ms'; Latency = 5 })) {
            Set-Harness @{}
            $container = "j$($condition.Latency)ms"
            Write-Host "==> journal, $($condition.Name): seeding $Documents documents" -ForegroundColor Cyan
            $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, $container, "$Documents")
            Set-Harness @{ latencyMs = $condition.Latency }
            $without = @(); $with = @(); $undo = @()
            for ($i = 1; $i -le $Repeat; $i++) {
                Write-Host "    B without journal ($i/$Repeat)"
                $without += Invoke-Module $container "fw$i" -Journal 'off'
                Write-Host "    B with journal ($i/$Repeat)"
                $with += Invoke-Module $container "fj$i" -Journal 'on'
            }
            Set-Harness @{}
            $size = Invoke-Baseline @('journal-size', $endpoint, $EmulatorKey, $database, 'migrations-journal', "bench-$container-fj1", $container)
            Set-Harness @{ latencyMs = $condition.Latency }
            for ($i = $Repeat; $i -ge 1; $i--) {
                Write-Host "    U: Undo-SchemaMigration ($i/$Repeat)"
                $undo += Invoke-Module $container "fj$i" -Mode 'undo'
            }
            $n = Get-Median ($without | ForEach-Object docsPerSecond)
            $j = Get-Median ($with | ForEach-Object docsPerSecond)
            $u = Get-Median ($undo | ForEach-Object docsPerSecond)
            $results.journal += [ordered]@{
                condition = $condition.Name; documents = $Documents
                withoutDocsPerSecond = $n; withDocsPerSecond = $j; undoDocsPerSecond = $u
                withOverWithout = [math]::Round($j / $n, 2); undoOverWith = [math]::Round($u / $j, 2)
                ruPerDocumentWithout = [math]::Round((Get-Median ($without | ForEach-Object { $_.requestCharge / $_.documents })), 2)
                ruPerDocumentWith = [math]::Round((Get-Median ($with | ForEach-Object { $_.requestCharge / $_.documents })), 2)
                ruPerDocumentUndo = [math]::Round((Get-Median ($undo | ForEach-Object { $_.requestCharge / $_.documents })), 2)
                journalBytesPerDocument = $size.bytesPerEntry; documentBytes = $size.bytesPerDocument; entries = $size.entries; records = $size.records
                requestsPerDocumentWithout = Get-PerDocument $without 'requests'; requestsPerDocumentWith = Get-PerDocument $with 'requests'; requestsPerDocumentUndo = Get-PerDocument $undo 'requests'
                runsWithout = @($without | ForEach-Object docsPerSecond); runsWith = @($with | ForEach-Object docsPerSecond); runsUndo = @($undo | ForEach-Object docsPerSecond)
            }
        }

        # M: a move of -Documents documents to a new partition key, one run (copy, then cut-over).
        Write-Host "==> move: $Documents documents to a new partition key (Start-ContainerMove, then Complete-ContainerMove)" -ForegroundColor Cyan
        Set-Harness @{}
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'move', "$Documents")
        $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/RunMove.ps1') $ModuleOut $endpoint $EmulatorKey $database 'move' | Select-Object -Last 1
        if ($LASTEXITCODE -ne 0) { throw "bench move failed: $line" }
        $results.move = $line | ConvertFrom-Json
        if ($results.move.verifiedDocuments -ne $Documents) { throw "the move verified $($results.move.verifiedDocuments) documents, not $($Documents): $line" }

        Write-Host '==> Import-Module: the module''s own load context against a plain binary module' -ForegroundColor Cyan
        $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/MeasureImport.ps1') $ModuleOut $endpoint $EmulatorKey $database | Select-Object -Last 1
        if ($LASTEXITCODE -ne 0) { throw "import measurement failed: $line" }
        $results.import = $line | ConvertFrom-Json
    }
    finally {
        Set-Harness @{}
        $kit.DeleteDatabase($database)
        # A server this task started does not outlive it.
        if (-not $wasRunning) { Stop-LocalCosmos }
    }

    $results.goals = [ordered]@{
        BoverA = @($results.conditions | ForEach-Object { $_.BoverA -ge 0.9 }) -notcontains $false
        BoverBulk = @($results.conditions | ForEach-Object { $_.BoverBulk -gt 1 }) -notcontains $false
        requestsPerDocument = @($results.conditions | ForEach-Object { $_.requestsPerDocument.B -le 1.05 }) -notcontains $false
        cpu = @($results.conditions | ForEach-Object { $_.cpuBoverA -le 1.15 }) -notcontains $false
        BoverC = ($results.conditions | Where-Object condition -EQ '5 ms').BoverC -ge 10
        scaleRate = $results.scale.docsPerSecondRatio -ge 0.9
        scaleMemory = $results.scale.peakMiBRatio -le 1.15
        scaleTracking = $results.scale.trackingPerDocument -le $results.scale.smallTrackingPerDocument
        ruBudget = $results.ruBudget.ratio -ge 0.9 -and $results.ruBudget.ratio -le 1.05
        fairness = $results.fairness.othersSlowdown -lt 0.2
    }
    foreach ($row in $results.distributed.sizes) {
        $results.goals["distributed1At$($row.documents)"] = $row['1'].ratio -ge 0.9
        $results.goals["distributed3At$($row.documents)"] = $row['3'].ratio -ge 0.8
        $results.goals["distributedExactAt$($row.documents)"] = $row['1'].exact -and $row['3'].exact
    }
    $benchDir = Join-Path $Output 'bench'
    New-Item -ItemType Directory -Path $benchDir -Force | Out-Null
    $file = Join-Path $benchDir "bench-$(Get-Date -Format 'yyyyMMdd-HHmmss').json"
    $results | ConvertTo-Json -Depth 6 | Set-Content $file
    Write-Host ''
    Write-Host "docs/s, medians of $Repeat runs (A: raw SDK at $concurrency in flight; B: the module at its defaults, before-images kept; B-NJ: -NoJournal; Bulk: pages of 100 whole-document upserts, as Cosmigrator; B$($concurrency): at $concurrency; C: the seed's loop, one run):"
    $results.conditions | ForEach-Object { [pscustomobject]$_ } | Format-Table condition, documents, A, B, @{ n = 'B-NJ'; e = { $_.BNoJournal } }, Bulk, @{ n = "B$concurrency"; e = { $_.B50 } }, C,
        @{ n = 'B/A'; e = { $_.BoverA } }, @{ n = 'B/Bulk'; e = { $_.BoverBulk } }, @{ n = "B$concurrency/A"; e = { $_.B50overA } }, @{ n = 'B/C'; e = { $_.BoverC } },
        @{ n = 'CPU s/1k A'; e = { $_.cpuPer1000A } }, @{ n = 'CPU s/1k B'; e = { $_.cpuPer1000B } }, @{ n = 'CPU B/A'; e = { $_.cpuBoverA } },
        @{ n = 'B in flight'; e = { $_.Bconcurrency -join ',' } } | Out-Host
    Write-Host 'Per changed document: requests the server answered (every request of a run), and RU as each tool counted them (the local server charges 1 RU a request):'
    $results.conditions | ForEach-Object { [pscustomobject]$_ } | Format-Table condition,
        @{ n = 'req/doc A|B|B-NJ|Bulk'; e = { '{0} | {1} | {2} | {3}' -f $_.requestsPerDocument.A, $_.requestsPerDocument.B, $_.requestsPerDocument.BNoJournal, $_.requestsPerDocument.Bulk } },
        @{ n = 'RU/doc A|B|B-NJ|Bulk'; e = { '{0} | {1} | {2} | {3}' -f $_.ruPerDocument.A, $_.ruPerDocument.B, $_.ruPerDocument.BNoJournal, $_.ruPerDocument.Bulk } },
        @{ n = 'catch-up s (share)'; e = { '{0} ({1:P1})' -f $_.catchUp.seconds, $_.catchUp.share } }, @{ n = 'catch-up requests (share)'; e = { '{0} ({1:P2})' -f $_.catchUp.requests, $_.catchUp.requestShare } } | Out-Host
    $s = $results.scale
    Write-Host ("Scale, B at its defaults: {0:N0} docs {1} docs/s, {2} MiB, {3} tracking requests/doc; {4:N0} docs {5} docs/s, {6} MiB, {7} (rate x{8}, memory x{9})" -f `
        $s.documents, $s.docsPerSecond, $s.peakMiB, $s.trackingPerDocument, $s.smallDocuments, $s.smallDocsPerSecond, $s.smallPeakMiB, $s.smallTrackingPerDocument, $s.docsPerSecondRatio, $s.peakMiBRatio)
    Write-Host ("Start-up and connect CPU: A {0} s, B {1} s, A' {2} s (subtracted)" -f $results.startupCpuSeconds.A, $results.startupCpuSeconds.B, $results.startupCpuSeconds.APwsh)
    foreach ($cond in $results.conditions) {
        Write-Host ("A' (A's loop hosted in pwsh), {0}: {1} docs/s, CPU s/1k {2} (x{3} A; B is x{4} A')" -f $cond.condition, $cond.APwsh, $cond.cpuPer1000APwsh, $cond.cpuAPwshOverA, $cond.cpuBoverAPwsh)
    }
    $f = $results.fairness
    Write-Host ("Fairness, 30 % 429 on range {0}'s writes: the other three finished in {1} s (calm {2} s, slowdown {3:P1}); the hot one slowed {4:P1}" -f $f.hotRange, $f.othersStormSeconds, $f.othersCalmSeconds, $f.othersSlowdown, $f.hotSlowdown)
    Write-Host "Distributed at loopback against one process (same documents, timed alike, medians of $Repeat rounds; CPU of all processes, and before their first document; return ms: the worst):"
    $results.distributed.sizes | ForEach-Object {
        [pscustomobject]@{
            documents = $_.documents
            'one docs/s' = $_.single.docsPerSecond; '1 worker' = $_['1'].docsPerSecond; '3 workers' = $_['3'].docsPerSecond
            'x1 | x3 (0.9 | 0.8)' = '{0} | {1} (rounds {2} | {3})' -f $_['1'].ratio, $_['3'].ratio, ($_['1'].ratios -join ' '), ($_['3'].ratios -join ' ')
            'CPU s one|1|3' = '{0} | {1} | {2}' -f $_.single.cpuSeconds, $_['1'].cpuSeconds, $_['3'].cpuSeconds
            'before 1st doc' = '{0} | {1} | {2}' -f $_.single.cpuBeforeRun, $_['1'].cpuBeforeRun, $_['3'].cpuBeforeRun
            exact = '{0} | {1}' -f $_['1'].exact, $_['3'].exact
            'return ms' = '{0} | {1}' -f $_['1'].returnLatencyMs, $_['3'].returnLatencyMs
            'own writes of reads' = '{0} | {1}' -f $_['1'].ownWritesShareOfReads, $_['3'].ownWritesShareOfReads
            'RU/doc one|1|3' = '{0} | {1} | {2}' -f $_.single.ruPerDocument, $_['1'].ruPerDocument, $_['3'].ruPerDocument
            shares = $_['3'].shares -join '/'
        }
    } | Format-List | Out-Host
    Write-Host ("RU budget 2000 RU/s: measured {0} RU/s ({1:P1})" -f $results.ruBudget.measuredRUPerSecond, $results.ruBudget.ratio)
    Write-Host "Journal (before-images), medians of $Repeat runs each at the module's defaults: B without, B with, U undoing the runs with"
    $results.journal | ForEach-Object { [pscustomobject]$_ } | Format-Table condition, documents, @{ n = 'B docs/s'; e = { $_.withoutDocsPerSecond } }, @{ n = '+journal'; e = { $_.withDocsPerSecond } }, @{ n = 'undo'; e = { $_.undoDocsPerSecond } },
        @{ n = 'RU/doc B|+j|undo'; e = { '{0} | {1} | {2}' -f $_.ruPerDocumentWithout, $_.ruPerDocumentWith, $_.ruPerDocumentUndo } },
        @{ n = 'req/doc B|+j|undo'; e = { '{0} | {1} | {2}' -f $_.requestsPerDocumentWithout, $_.requestsPerDocumentWith, $_.requestsPerDocumentUndo } },
        @{ n = 'records|entries'; e = { '{0} | {1}' -f $_.records, $_.entries } }, @{ n = 'bytes entry|doc'; e = { '{0} | {1}' -f $_.journalBytesPerDocument, $_.documentBytes } } | Out-Host

    $m = $results.move
    Write-Host ("Move of {0:N0} documents to a new key: copy {1} s ({2} docs/s, {3} RU/doc, {4} requests); cut-over {5} s, of which verification (a digest of both sides) {6} s" -f
        $m.verifiedDocuments, $m.copySeconds, $m.copyDocsPerSecond, $m.copyRUPerDocument, $m.copyRequests, $m.completeSeconds, $m.verifySeconds)
    Write-Host ("Import-Module: {0} ms in the module's own load context, {1} ms as a plain binary module (+{2} ms); first commands {3} / {4} ms (medians of {5})" -f
        $results.import.importMsIsolated, $results.import.importMsPlain, $results.import.importMsAdded, $results.import.firstCommandsMsIsolated, $results.import.firstCommandsMsPlain, $results.import.rounds)
    Write-Host ('Goals: ' + (($results.goals.GetEnumerator() | ForEach-Object { "$($_.Key) $(if ($_.Value) { 'met' } else { 'NOT met' })" }) -join '; '))
    Write-Host "Results: $file"
}

switch ($Task) {
    'Build' { Invoke-Build }
    'Package' { Invoke-Build; Invoke-Package }
    'Test' { Invoke-Tests }
    'Demo' { Invoke-Demo }
    'Bench' { Invoke-Bench }
    'StartLocalCosmos' { $state = Start-LocalCosmos; Initialize-SampleDatabase $state; Write-ServerNote $state }
    'StopLocalCosmos' { Stop-LocalCosmos }
}
