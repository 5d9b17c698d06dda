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

# The file's test database: a new one in $script:Database, and the session connected to it.
function Initialize-TestDatabase {
    $script:Database = New-TestDatabase
    Connect-Test $script:Database
}

# After the file: the harness's faults cleared (a failed test may have left some) and the test
# database dropped.
function Remove-TestDatabase {
    if ($script:IsHarness) { Set-Faults @{} }
    $script:Kit.DeleteDatabase($script:Database)
}

# A new container of the test database (partition key /pk) holding $Count documents (ids d0, d1, …)
# over $Keys partition keys, each with the fields of the JSON object $Extra when it is given.
function New-SeededContainer([string] $Container, [int] $Count, [int] $Keys, [string] $Extra) {
    $script:Kit.CreateContainer($script:Database, $Container, '/pk')
    $script:Kit.Seed($script:Database, $Container, $Count, $Keys, 0, $Extra)
}

# The partition key ranges a container of the test database has now (the harness's view).
function Get-RangeCount([string] $Container) { @(($script:Kit.Ranges($script:Database, $Container) | ConvertFrom-Json).ranges).Count }

# Splits a container's fullest range $Times times, as the service does when a range grows (the
# harness); returns the ranges it has then.
function Split-Range([string] $Container, [int] $Times) {
    1..$Times | ForEach-Object { $null = $script:Kit.Split($script:Database, $Container, $null) }
    Get-RangeCount $Container
}

function Get-HarnessStats { $script:Kit.Stats() | ConvertFrom-Json }

# Requests the harness answered, by "METHOD STATUS" (e.g. 'PATCH 200'), optionally for one container.
function Get-MethodCount($Stats, [string] $Key, [string] $Container) {
    $value = if ($Container) { $Stats.byContainer.PSObject.Properties["$Container $Key"] } else { $Stats.byMethod.PSObject.Properties[$Key] }
    if ($value) { [int]$value.Value } else { 0 }
}

function Set-Faults([hashtable] $Faults) { $null = $script:Kit.SetFaults(($Faults | ConvertTo-Json -Compress)) }

# The pwsh that child processes run: this one's. Under 'dotnet pwsh' this process is the dotnet
# host, and the children run pwsh.dll with it directly ('dotnet pwsh' would first look for its tool).
$script:Pwsh = (Get-Process -Id $PID).Path
$script:PwshPrefix = @(if ((Split-Path $script:Pwsh -Leaf) -like 'dotnet*') { Join-Path $PSHOME 'pwsh.dll' })

# A child pwsh run to its end, for a script whose output is what the test reads: its lines (every
# stream, as text) are returned and its exit code is in $LASTEXITCODE.
function Invoke-Pwsh { & $script:Pwsh @script:PwshPrefix -NoProfile -NonInteractive @args 2>&1 | ForEach-Object { "$_" } }

# A migration's tracking document as stored (the test database's tracking container).
function Get-Tracking([string] $Name) { $script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = '$Name'") | ConvertFrom-Json }

# The user content of a container's documents (system properties left out), one canonical line
# each, sorted: two containers holding the same documents give the same lines.
function Get-UserContent([string] $Container) {
    $script:Kit.ReadAllJson($script:Database, $Container) | ForEach-Object {
        $document = $_ | ConvertFrom-Json -AsHashtable
        foreach ($system in '_rid', '_self', '_etag', '_ts', '_attachments', '_lsn') { $document.Remove($system) }
        $sorted = [ordered]@{}
        foreach ($key in ($document.Keys | Sort-Object)) { $sorted[$key] = $document[$key] }
        $sorted | ConvertTo-Json -Compress -Depth 10
    } | Sort-Object
}

# A command of the module run in a thread job of this process, imported and connected as the tests
# are: for a run that goes on while the test writes, splits or stops. Receive-Job gives its output.
# $ArgumentList goes to the command's param() block (objects a string cannot carry: operations
# with script blocks).
function Start-ConnectedJob([string] $Command, [object[]] $ArgumentList = @()) {
    Start-ThreadJob -ScriptBlock $script:ConnectedCommand -ArgumentList $script:ModulePath, $script:Endpoint, $script:Key, $script:Database, $Command, $ArgumentList
}

# The same in a runspace of its own, begun (BeginInvoke), for a test that stops it as Ctrl+C does:
# $ps.Stop(), then $ps.Dispose().
function Start-ConnectedPipeline([string] $Command, [object[]] $ArgumentList = @()) {
    $ps = [PowerShell]::Create()
    $null = $ps.AddScript($script:ConnectedCommand)
    foreach ($argument in $script:ModulePath, $script:Endpoint, $script:Key, $script:Database, $Command, $ArgumentList) { $null = $ps.AddArgument($argument) }
    $null = $ps.BeginInvoke()
    $ps
}

$script:ConnectedCommand = {
    param($module, $endpoint, $key, $database, $command, $arguments)
    Import-Module $module
    Connect-CosmosMigration -Endpoint $endpoint -Key $key -Database $database -SkipCertificateCheck | Out-Null
    & ([scriptblock]::Create($command)) @arguments
}

# Runs $Run with every error terminating (-ErrorAction does not reach the cmdlets inside a script
# block; the preference does) and checks that an error stopped it, $Id, of a category: returns what
# it output (Output) and that error (Record).
function Invoke-Refusal([scriptblock] $Run, [string] $Id) {
    $output = $null
    $record = $null
    try {
        $ErrorActionPreference = 'Stop'
        $output = & $Run
    }
    catch { $record = $_ }
    $record | Should -Not -BeNullOrEmpty -Because 'the input is refused with an error'
    $record.FullyQualifiedErrorId | Should -BeLike "$Id,*"
    $record.CategoryInfo.Category | Should -Not -Be 'NotSpecified'
    [pscustomobject]@{ Output = $output; Record = $record }
}

# The one launcher of child pwsh processes, for every Pester file. A child can be killed (SIGKILL),
# which a thread job cannot, and starts from a clean process. It runs $Script with the module
# imported and, unless -NoConnect, connected to the test database; it records its PID in "$Log.pid"
# (the migrating process itself: under 'dotnet' the started process is the host) and writes every
# stream to $Log (it writes its own log: Start-Process's redirection crashes this process when the
# child is killed). Its result protocol: what $Script passes to Set-RunnerResult lands as JSON in
# "$Log.json" (Get-RunnerResult).
#   -Together N: the child waits, module loaded and connected, until N children of $Log's folder are
#     ready, so that none arrives when the others are nearly done (pwsh takes seconds to start on a
#     busy machine).
#   -Gate: the child waits, loaded and connected, until Open-RunnerGate: its start-up overlaps a wait
#     of the test (a lease running out), and the test still decides when it starts.
#   -Environment: variables set in the child's environment ($null removes one).
#   -NoImport: neither imports nor connects (the script loads what it needs in its own order);
#   -NoConnect: imports only.
function Start-Runner([string] $Script, [string] $Log, [int] $Together = 0, [switch] $Gate, [switch] $NoImport, [switch] $NoConnect, [hashtable] $Environment = @{}) {
    $file = "$Log.ps1"
    $lines = @(
        'param($module, $endpoint, $key, $database, $log)'
        '$PID | Set-Content "$log.pid"'
        'function Set-RunnerResult($Result) { ConvertTo-Json -InputObject $Result -Depth 8 | Set-Content "$log.json" }'
        '& {'
        if (-not $NoImport) { 'Import-Module $module' }
        if (-not $NoImport -and -not $NoConnect) { 'Connect-CosmosMigration -Endpoint $endpoint -Key $key -Database $database -SkipCertificateCheck' }
        if ($Together -or $Gate) { 'New-Item "$log.ready" | Out-Null' }
        if ($Together) { "while (@(Get-ChildItem `"`$(Split-Path `$log)/*.ready`").Count -lt $Together) { Start-Sleep -Milliseconds 20 }" }
        if ($Gate) { 'while (-not (Test-Path "$log.go")) { Start-Sleep -Milliseconds 20 }' }
        $Script
        '} *> $log'
    )
    Set-Content $file ($lines -join "`n")
    [string[]] $arguments = $script:PwshPrefix + @('-NoProfile', '-NonInteractive', '-File', $file, $script:ModulePath, $script:Endpoint, $script:Key, $script:Database, $Log)
    Start-Process -FilePath $script:Pwsh -PassThru -ArgumentList $arguments -WorkingDirectory "$($script:Root)" -Environment $Environment
}

# Lets a child started with -Gate go on (once it is ready; it waits for the gate either way).
function Open-RunnerGate([string] $Log) { New-Item "$Log.go" | Out-Null }

# The object the child passed to Set-RunnerResult.
function Get-RunnerResult([string] $Log) { Get-Content "$Log.json" -Raw | ConvertFrom-Json }

# Waits for a child; one that does not return in time is killed and fails the test with what it
# said and, given -Name, what that migration's tracking document holds (a stuck worker is explained
# by its -Verbose lines).
function Wait-Runner($Process, [string] $Log, [string] $Name, [int] $Seconds = 240) {
    if (-not $Process.WaitForExit($Seconds * 1000)) {
        $tracking = if ($Name) { "`nTracking: $($script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = '$Name'"))" }
        $Process.Kill($true)
        throw "Runner $(Split-Path -Leaf $Log) did not return in $Seconds s.`nIts log:`n$(Get-Content $Log -Raw -ErrorAction SilentlyContinue)$tracking"
    }
}

# Waits for a child and returns its result; a child that exits without one (or, with -ExitZero,
# with another exit code than 0) fails the test with its log.
function Wait-RunnerResult($Process, [string] $Log, [int] $Seconds = 240, [switch] $ExitZero) {
    Wait-Runner $Process $Log -Seconds $Seconds
    if (-not (Test-Path "$Log.json") -or ($ExitZero -and $Process.ExitCode -ne 0)) {
        throw "Runner $(Split-Path -Leaf $Log) exited with $($Process.ExitCode) and $(if (Test-Path "$Log.json") { 'a' } else { 'no' }) result. Its log:`n$(Get-Content $Log -Raw -ErrorAction SilentlyContinue)"
    }
    Get-RunnerResult $Log
}

# Runners that start together and are waited for: $Start starts one from its log (the count is
# $Count, for its -Together); the logs, returned, are "$Folder/<folder name>-<n>.log"; a runner that
# does not return is explained by migration $Name's tracking (Wait-Runner).
function Invoke-RunnersTogether([string] $Folder, [int] $Count, [string] $Name, [scriptblock] $Start) {
    $null = New-Item -ItemType Directory $Folder
    $logs = 1..$Count | ForEach-Object { Join-Path $Folder "$(Split-Path -Leaf $Folder)-$_.log" }
    $runners = @($logs | ForEach-Object { & $Start $_ })
    for ($i = 0; $i -lt $Count; $i++) { Wait-Runner $runners[$i] $logs[$i] $Name }
    $logs
}

# A distributed run's $Count workers each took a share of its ranges, and the shares add up to its
# count, $Total.
function Assert-WorkerShares([string] $Name, [int] $Count, [long] $Total) {
    $tracking = Get-Tracking $Name
    $tracking.processed | Should -Be $Total
    $shares = @($tracking.workers.PSObject.Properties.Value)
    $shares.Count | Should -Be $Count
    $shares | ForEach-Object { $_.processed | Should -BeGreaterThan 0 -Because "every worker took a share of the ranges ($($tracking.workers | ConvertTo-Json -Compress))" }
    ($shares | Measure-Object processed -Sum).Sum | Should -Be $Total
}

# SIGKILLs the child's migrating process.
function Stop-Runner([string] $Log) { & kill -9 ([int](Get-Content "$Log.pid")) }

# The crash suites' rounds, up to $Rounds: a runner of $Command (migration or, with -Undo, undo
# $Name) loads and connects while the last one's lease runs out, starts once that lease has expired,
# and is SIGKILLed at a random amount of progress past where it started (20 to 250 documents: not of
# time, so that however fast the machine, the rounds cannot finish the run), then a random 0-40 ms.
# The rounds end early once the run has ended; their logs are "$Log-<round>.log". Returns the kills.
function Invoke-KillRounds([string] $Command, [string] $Name, [int] $Rounds, [System.Random] $Random, [string] $Log, [switch] $Undo) {
    $done = if ($Undo) { 'undone' } else { 'completed' }
    $kills = 0
    for ($round = 1; $round -le $Rounds; $round++) {
        $roundLog = "$Log-$round.log"
        $process = Start-Runner $Command $roundLog -Gate
        Wait-Until { -not (Get-MigrationStatus -Name $Name).Owner } 30 | Should -BeTrue
        # Until an undo has begun, Processed is the migration's own count.
        $processedBefore = if (-not $Undo -or (Get-Tracking $Name).undo) { [long](Get-MigrationStatus -Name $Name).Processed } else { 0 }
        Open-RunnerGate $roundLog
        $killAfter = $processedBefore + $Random.Next(20, 250)
        $reached = Wait-Until { Get-MigrationStatus -Name $Name | Where-Object { $_.Owner -and (-not $Undo -or $_.IsUndo) -and $_.Processed -ge $killAfter } } 60
        if (-not $reached) {
            if ((Get-MigrationStatus -Name $Name).Status -eq $done) { break }
            throw "round $round never reached its kill point: $(Get-Content $roundLog -Raw -ErrorAction SilentlyContinue)"
        }
        Start-Sleep -Milliseconds $Random.Next(0, 40)
        Stop-Runner $roundLog
        $process.Kill($true)
        $kills++
        $state = Get-MigrationStatus -Name $Name
        Write-Host "    kill $kills at processed=$($state.Processed) scanned=$($state.Scanned)"
        if ($state.Status -eq $done) { break }
    }
    $kills
}

# True once $Condition holds, checked every $Every ms; false after $Seconds.
function Wait-Until([scriptblock] $Condition, [int] $Seconds = 60, [int] $Every = 50) {
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { return $false }
        Start-Sleep -Milliseconds $Every
    }
    return $true
}
