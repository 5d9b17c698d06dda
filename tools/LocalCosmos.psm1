<#
    The local Cosmos DB server's lifecycle for the build's tasks (tests/LocalCosmos/README.md):
    its npm packages (installed from the lock file), its state file (output/localcosmos.json:
    endpoint, pid, partitions), start (idempotent) and stop, the sample database 'demo', and the
    lines that tell a user how to connect and stop. The process starts, and the harness routes are
    called, through the test kit's C# (LocalServerProcess, LocalServerAdmin), as the xunit suites do.
#>
. (Join-Path $PSScriptRoot 'Common.ps1')
$HarnessDir = Join-Path $Root 'tests/LocalCosmos'
$StateFile = Join-Path $Output 'localcosmos.json'

function Test-HarnessInstalled {
    # A stamp with the lock file's hash says whether the installed packages are the locked ones.
    $stamp = Join-Path $HarnessDir 'node_modules/.installed-lock-hash'
    (Test-Path $stamp) -and (Get-Content $stamp -Raw).Trim() -eq (Get-FileHash (Join-Path $HarnessDir 'package-lock.json') -Algorithm SHA256).Hash
}

function Set-HarnessInstalled {
    Set-Content -Path (Join-Path $HarnessDir 'node_modules/.installed-lock-hash') -Value (Get-FileHash (Join-Path $HarnessDir 'package-lock.json') -Algorithm SHA256).Hash
}

function Install-LocalCosmos {
    # Installs from the committed lock file.
    if (-not (Test-HarnessInstalled)) {
        Write-Host '==> Installing the local Cosmos DB server (npm ci)' -ForegroundColor Cyan
        Invoke-Native npm @('ci', '--no-audit', '--no-fund', '--loglevel=error') $HarnessDir
        Set-HarnessInstalled
    }
}

# npm ci beside the build (it waits on the network, the build on the CPU): a job whose result
# Complete-LocalCosmosInstall waits for. $null when the locked packages are installed already.
function Start-LocalCosmosInstall {
    if (Test-HarnessInstalled) { return $null }
    Write-Host '==> Installing the local Cosmos DB server (npm ci, beside the build)' -ForegroundColor Cyan
    Start-ThreadJob -ArgumentList $HarnessDir -ScriptBlock {
        param($directory)
        Set-Location $directory
        $output = & npm ci --no-audit --no-fund --loglevel=error 2>&1 | ForEach-Object { "$_" }
        [pscustomobject]@{ Exit = $LASTEXITCODE; Output = $output -join "`n" }
    }
}

function Complete-LocalCosmosInstall($Job) {
    if (-not $Job) { return }
    $result = $Job | Wait-Job | Receive-Job
    $Job | Remove-Job
    if ($result.Exit -ne 0) { throw "'npm ci' failed with exit code $($result.Exit): $($result.Output)" }
    Set-HarnessInstalled
}

# The test kit (output/testkit, made by tools/Build-Module.ps1; published here when missing),
# loaded into this process once.
function Import-TestKit([string] $Configuration = 'Release') {
    if ('CosmosMigrations.TestKit.LocalServerProcess' -as [type]) { return }
    $kit = Join-Path $Output 'testkit/CosmosMigrations.TestKit.dll'
    if (-not (Test-Path $kit)) {
        Invoke-Native dotnet @('publish', 'tests/CosmosMigrations.TestKit/CosmosMigrations.TestKit.csproj', '-c', $Configuration, '-o', (Join-Path $Output 'testkit'), '--nologo', '-v', 'q')
    }
    Add-Type -Path $kit
}

function Get-StateFile([string] $Name) {
    if ($Name) { Join-Path $Output "localcosmos-$Name.json" } else { $StateFile }
}

# The state of a server that answers, or $null.
function Get-LocalCosmosState([string] $Name) {
    $file = Get-StateFile $Name
    if (-not (Test-Path $file)) { return $null }
    $state = Get-Content $file -Raw | ConvertFrom-Json
    $process = Get-Process -Id $state.pid -ErrorAction SilentlyContinue
    if (-not $process -or $process.ProcessName -ne 'node') { return $null }
    Import-TestKit
    $admin = [CosmosMigrations.TestKit.LocalServerAdmin]::new($state.endpoint)
    try { if ($admin.IsUp([timespan]::FromSeconds(5))) { $state } else { $null } }
    finally { $admin.Dispose() }
}

# -Name: a server of the test run's own beside the one StartLocalCosmos names (output/localcosmos.json),
# with its own state file and log (output/localcosmos-<Name>.json, .log).
function Start-LocalCosmos([int] $Partitions = 4, [string] $Name, [string] $Configuration = 'Release') {
    Import-TestKit $Configuration
    $stateFile = Get-StateFile $Name
    $state = Get-LocalCosmosState $Name
    if ($state) {
        $running = if ($state.PSObject.Properties['partitions']) { [int]$state.partitions } else { 1 }
        if ($running -ne $Partitions) {
            throw "The local Cosmos DB server at $($state.endpoint) runs with $running partition(s), not $Partitions; stop it first (build.ps1 -Task StopLocalCosmos: its data is in memory and goes with it)."
        }
        Write-Host "Local Cosmos DB server already running: $($state.endpoint) ($running partition key ranges per container)"
        return $state
    }

    Install-LocalCosmos
    New-Item -ItemType Directory -Path $Output -Force | Out-Null
    Remove-Item $stateFile -ErrorAction SilentlyContinue
    $log = Join-Path $Output "localcosmos$(if ($Name) { "-$Name" }).log"
    Remove-Item $log -ErrorAction SilentlyContinue
    # Port 8081 is the emulator's; if it is taken, the server picks a free port and says which.
    $process = [CosmosMigrations.TestKit.LocalServerProcess]::StartDetached((Join-Path $HarnessDir 'server.js'), $Partitions, $stateFile, $log)
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ($process.HasExited) { throw "The local Cosmos DB server exited: $(Get-Content $log -Raw -ErrorAction SilentlyContinue)" }
        $state = Get-LocalCosmosState $Name
        if ($state) {
            Write-Host "Local Cosmos DB server$(if ($Name) { " $Name" }): $($state.endpoint) (pid $($state.pid), $Partitions partition key ranges per container)"
            return $state
        }
        Start-Sleep -Milliseconds 200
    }
    throw 'The local Cosmos DB server did not answer within 30 s.'
}

function Stop-LocalCosmos([string] $Name) {
    $stateFile = Get-StateFile $Name
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

function Initialize-SampleDatabase($State, [string] $Configuration = 'Release') {
    # The README's first session connects to 'demo' on this server, which keeps its data in memory
    # (empty after every start): seed it, as the demo does, when it is missing.
    Import-TestKit $Configuration
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

function Write-LocalCosmosNote($State) {
    Write-Host "Connect from pwsh:  $(Get-ConnectLine $State)"
    Write-Host "The server keeps running (its data lives in memory); stop it with: dotnet pwsh ./build.ps1 -Task StopLocalCosmos"
}

Export-ModuleMember -Function Start-LocalCosmosInstall, Complete-LocalCosmosInstall, Get-LocalCosmosState, Start-LocalCosmos, Stop-LocalCosmos,
    Initialize-SampleDatabase, Write-LocalCosmosNote, Import-TestKit
