# Shared by every Pester file: imports the built module (from output/, as a user would) and the
# test-data kit, and names the server (COSMOS_ENDPOINT / COSMOS_KEY, set by build.ps1 -Task Test).
$script:Root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$script:ModulePath = if ($env:COSMOSMIGRATIONS_MODULE) { $env:COSMOSMIGRATIONS_MODULE } else { Join-Path $script:Root 'output/CosmosMigrations' }
Import-Module $script:ModulePath -Force
Add-Type -Path (Join-Path $script:Root 'output/testkit/CosmosMigrations.TestKit.dll')

$script:Endpoint = $env:COSMOS_ENDPOINT
$script:Key = $env:COSMOS_KEY
$script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1'
if (-not $script:Endpoint -or -not $script:Key) { throw 'COSMOS_ENDPOINT and COSMOS_KEY must be set (build.ps1 -Task Test sets them).' }
$script:Kit = [CosmosMigrations.TestKit.TestData]::new($script:Endpoint, $script:Key)

function New-TestDatabase {
    $name = 'p' + [guid]::NewGuid().ToString('N').Substring(0, 12)
    $script:Kit.CreateDatabase($name)
    return $name
}

function Connect-Test([string] $Database) {
    Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $Database -SkipCertificateCheck -Confirm:$false
}

function Get-HarnessStats { $script:Kit.Stats() | ConvertFrom-Json }

# Requests the harness answered, by "METHOD STATUS" (e.g. 'PATCH 200'), optionally for one container.
function Get-MethodCount($Stats, [string] $Key, [string] $Container) {
    $value = if ($Container) { $Stats.byContainer.PSObject.Properties["$Container $Key"] } else { $Stats.byMethod.PSObject.Properties[$Key] }
    if ($value) { [int]$value.Value } else { 0 }
}

function Set-Faults([hashtable] $Faults) { $null = $script:Kit.SetFaults(($Faults | ConvertTo-Json -Compress)) }

# Shared by the crash and partition suites.
$script:Pwsh = (Get-Process -Id $PID).Path

# A migration's tracking document as stored (the test database's tracking container).
function Get-Tracking([string] $Name) { $script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = '$Name'") | ConvertFrom-Json }

# A child pwsh that runs one migration and can be killed; it records its own PID.
function Start-Runner([string] $Script, [string] $Log) {
    $file = "$Log.ps1"
    Set-Content $file ("param(`$module, `$endpoint, `$key, `$database, `$log)`n`$PID | Set-Content `"`$log.pid`"`n& {`nImport-Module `$module`nConnect-CosmosMigration -Endpoint `$endpoint -Key `$key -Database `$database -SkipCertificateCheck`n$Script`n} *> `$log")
    [string[]] $arguments = @('-NoProfile', '-NonInteractive', '-File', $file, $script:ModulePath, $script:Endpoint, $script:Key, $script:Database, $Log)
    if ((Split-Path $script:Pwsh -Leaf) -like 'dotnet*') { $arguments = @('pwsh') + $arguments }
    Start-Process -FilePath $script:Pwsh -PassThru -ArgumentList $arguments -WorkingDirectory "$($script:Root)"
}

function Wait-Until([scriptblock] $Condition, [int] $Seconds = 60) {
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { return $false }
        Start-Sleep -Milliseconds 50
    }
    return $true
}

# The output of a child started by Start-Process with -RedirectStandardOutput/-Error, once it
# exited (throws after $Seconds). Start-Process copies a child's redirected streams to the files
# asynchronously: WaitForExit(timeout) can return before the last lines are written, so this
# also waits for the copy to finish, and then for the $Marker line if one is given (a child that
# exited 0 with an empty file was a race, not a failure).
function Wait-ChildOutput([System.Diagnostics.Process] $Process, [string] $OutFile, [string] $ErrFile, [int] $Seconds = 180, [string] $Marker) {
    if (-not $Process.WaitForExit($Seconds * 1000)) {
        $Process.Kill($true)
        throw "The child did not finish within $Seconds s:`n$(Get-Content $OutFile, $ErrFile -Raw -ErrorAction SilentlyContinue)"
    }
    $Process.WaitForExit()
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    do {
        $output = @(Get-Content $OutFile -ErrorAction SilentlyContinue) + @(Get-Content $ErrFile -ErrorAction SilentlyContinue)
        if (-not $Marker -or ($output | Where-Object { $_.StartsWith($Marker) })) { break }
        Start-Sleep -Milliseconds 200
    } while ([DateTime]::UtcNow -lt $deadline)
    $output
}
