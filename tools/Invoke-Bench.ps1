<#
.SYNOPSIS
    build.ps1 -Task Bench: the benchmark of the built module, on the local server (started here
    unless one runs, and then stopped again).

.DESCRIPTION
    Measures, side by side in one run on the local server and the same documents: A the raw SDK
    ceiling (50 in flight), B the module end to end at its real defaults (before-images kept),
    with -NoJournal and at 50 in flight, Bulk a peer's bulk upsert loop (pages of 100 whole
    documents upserted 100 at once, as Cosmigrator), requests and RU per changed document of
    each, the catch-up scan's share of B's run, C the seed's one-at-a-time loop (and A', A's loop
    hosted in pwsh, for the host's own share; B with the runtime's dynamic PGO off in its process,
    a runbook's setting beside the defaults), at loopback and with 5 ms added to every answer
    (A and B take turns -Repeat times; medians compared); CPU per 1,000 documents of A and B
    (start-up and connect subtracted); B over -LargeDocuments (docs/s, peak memory, tracking
    requests per document) against its run over -Documents; RU/s against -MaxRUPerSecond;
    fairness under a 429 storm on one range; distributed runs of 1 and 3 workers beside one
    process, over -Documents and -DistributedDocuments (CPU before the first document shown); a
    move of -Documents documents to a new partition key; the ms that the module's own load
    context adds to Import-Module; the journal's cost (B without and with before-images: docs/s,
    RU and stored bytes per document) and the undo's docs/s beside the migration's. Table, goals
    and JSON (with the commit, the machine and every run) in output/bench/
    (tools/Write-BenchReport.ps1 prints them); docs/performance.md explains.
#>
[CmdletBinding()]
param(
    # Documents of each condition (the same documents for A, B and C).
    [int] $Documents = 20000,
    # Runs of A and of B per condition (taking turns); their medians are compared.
    [int] $Repeat = 3,
    # Documents of the scale run (B at its defaults, compared with its run over -Documents).
    [int] $LargeDocuments = 200000,
    # The second size of the distributed comparison (the first is -Documents).
    [int] $DistributedDocuments = 60000,
    [int] $Partitions = 4,
    # The sections to run, all by default: Throughput (start-up cost, A, B and the peers in both
    # conditions, the catch-up share, scale), Fairness, Distributed, RUBudget, Journal, Move,
    # Import. Goals are judged only for the sections run.
    [ValidateSet('Throughput', 'Fairness', 'Distributed', 'RUBudget', 'Journal', 'Move', 'Import')]
    [string[]] $Section = @('Throughput', 'Fairness', 'Distributed', 'RUBudget', 'Journal', 'Move', 'Import'),
    [string] $Configuration = 'Release'
)

. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module (Join-Path $PSScriptRoot 'LocalCosmos.psm1')

Invoke-Native dotnet @('build', 'tests/CosmosMigrations.Bench/CosmosMigrations.Bench.csproj', '-c', 'Release', '--nologo', '-v', 'q')
$bench = Join-Path $Root 'tests/CosmosMigrations.Bench/bin/Release/net10.0/CosmosMigrations.Bench.dll'
$wasRunning = [bool](Get-LocalCosmosState)
$state = Start-LocalCosmos -Partitions $Partitions -Configuration $Configuration
$endpoint = $state.endpoint
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
# -Environment: variables set for that run's pwsh only (a runtime setting a runbook may choose).
function Invoke-Module([string] $Container, [string] $Field, [double] $Budget = 0, [int] $InFlight = 0, [string] $Journal = 'on', [string] $Mode = 'migrate', [hashtable] $Environment = @{}) {
    $before = Get-TrackingRequests
    $requestsBefore = Get-ServerRequests
    foreach ($name in $Environment.Keys) { Set-Item "env:$name" $Environment[$name] }
    try {
        $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/RunModule.ps1') $ModuleOut $endpoint $EmulatorKey $database $Container $Field $Budget $InFlight $Journal $Mode | Select-Object -Last 1
    }
    finally {
        foreach ($name in $Environment.Keys) { Remove-Item "env:$name" -ErrorAction SilentlyContinue }
    }
    if ($LASTEXITCODE -ne 0) { throw "bench module run failed: $line" }
    $result = $line | ConvertFrom-Json
    if ($result.status -ne $(if ($Mode -eq 'undo') { 'undone' } else { 'completed' })) { throw "bench module run ended '$($result.status)': $line" }
    $result | Add-Member trackingRequests ((Get-TrackingRequests) - $before)
    $result | Add-Member requests ((Get-ServerRequests) - $requestsBefore)
    $result
}
# The runtime's dynamic PGO off in B's process: not a default (a module cannot set it for the pwsh
# that loads it), a setting a runbook can choose (docs/guides/runbook.md). Measured beside B, never
# instead of it: the goals judge B at its defaults.
$PgoOff = @{ DOTNET_TieredPGO = '0' }
# A baseline run (A, the bulk peer) with the server's requests noted.
function Invoke-Counted([string[]] $Arguments) {
    $requestsBefore = Get-ServerRequests
    $result = Invoke-Baseline $Arguments
    $result | Add-Member requests ((Get-ServerRequests) - $requestsBefore)
    $result
}
function Get-ServerRequests { ($kit.Stats() | ConvertFrom-Json).requests }
# Per changed document: the server's requests, and the request units the tool itself counted.
function Get-PerDocument($Runs, [string] $Property) { [math]::Round((Get-Median @($Runs | ForEach-Object { $_.$Property / $_.documents })), 4) }
function Set-Harness([hashtable] $Settings) { $null = $kit.SetFaults(($Settings | ConvertTo-Json)) }
function Get-TrackingRequests {
    # Requests to the tracking container ('migrations'), every method and status.
    $stats = $kit.Stats() | ConvertFrom-Json
    $sum = 0
    foreach ($p in $stats.byContainer.PSObject.Properties) { if ($p.Name -like 'migrations *') { $sum += [int]$p.Value } }
    $sum
}
function Get-Median([double[]] $Values) {
    $sorted = @($Values | Sort-Object)
    $middle = [math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$middle] } else { ($sorted[$middle - 1] + $sorted[$middle]) / 2 }
}
# The two conditions of the throughput and journal comparisons: the harness's loopback and 5 ms
# of latency. A condition's container holds -Documents documents seeded without latency; the
# harness then answers at the condition's latency.
$latencies = @(@{ Name = 'loopback'; Latency = 0 }, @{ Name = '5 ms'; Latency = 5 })
function Initialize-Condition([hashtable] $Condition, [string] $Container, [string] $Title) {
    Set-Harness @{}
    Write-Host "==> $($Title)$($Condition.Name): seeding $Documents documents" -ForegroundColor Cyan
    $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, $Container, "$Documents")
    Set-Harness @{ latencyMs = $Condition.Latency }
}
# CPU per 1,000 documents: the run's CPU minus the same process's start-up and connect cost
# (a run over an empty container).
function Get-CpuPerThousand($Runs, [double] $BaselineCpu) {
    Get-Median @($Runs | ForEach-Object { [math]::Max(0.0, $_.cpuSeconds - $BaselineCpu) / $_.documents * 1000 })
}

$commit = (& git -C $Root rev-parse --short HEAD 2>$null)
$dirty = [bool](& git -C $Root status --porcelain 2>$null)
$kit = [CosmosMigrations.TestKit.TestData]::new($endpoint, $EmulatorKey)
$results = [ordered]@{
    commit = "$commit$(if ($dirty) { '+changes' })"; machine = "$([Environment]::ProcessorCount) cores"; date = (Get-Date).ToString('o')
    documents = $Documents; largeDocuments = $LargeDocuments; concurrencyA = $concurrency; repeat = $Repeat; sections = $Section; conditions = @()
}
try {
    if ($Section -contains 'Throughput') {
    Write-Host '==> start-up and connect cost (runs over an empty container)' -ForegroundColor Cyan
    Set-Harness @{}
    $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'empty', '0')
    $baseA = Get-Median @(1..2 | ForEach-Object { (Invoke-Baseline @('raw', $endpoint, $EmulatorKey, $database, 'empty', 'fe', "$concurrency")).cpuSeconds })
    $baseB = Get-Median @(1..2 | ForEach-Object { $i = $_; (Invoke-Module 'empty' "fe$i").cpuSeconds })
    $baseBPgoOff = Get-Median @(1..2 | ForEach-Object { $i = $_; (Invoke-Module 'empty' "fg$i" -Environment $PgoOff).cpuSeconds })
    $baseAPwsh = Get-Median @(1..2 | ForEach-Object { (Invoke-BaselineInPwsh @('raw', $endpoint, $EmulatorKey, $database, 'empty', 'fe', "$concurrency")).cpuSeconds })
    $results.startupCpuSeconds = [ordered]@{ A = $baseA; B = $baseB; APwsh = $baseAPwsh; BPgoOff = $baseBPgoOff }

    foreach ($condition in $latencies) {
        $container = "c$($condition.Latency)ms"
        Initialize-Condition $condition $container ''
        # A, B at its defaults and B at A's concurrency take turns, each run adding its own
        # field to every document, so that the machine's drifts fall on all alike; the
        # medians are compared.
        $runsA = @(); $runsB = @(); $runsB50 = @(); $runsAPwsh = @(); $runsBNoJournal = @(); $runsBulk = @(); $runsBPgoOff = @()
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
            Write-Host "    B at its defaults, the runtime's dynamic PGO off in its process (DOTNET_TieredPGO=0) ($i/$Repeat)"
            $runsBPgoOff += Invoke-Module $container "fg$i" -Environment $PgoOff
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
        $bPgoOff = Get-Median ($runsBPgoOff | ForEach-Object docsPerSecond)
        $cpuBPgoOff = Get-CpuPerThousand $runsBPgoOff $baseBPgoOff
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
            BPgoOff = $bPgoOff; BPgoOffOverA = [math]::Round($bPgoOff / $a, 2); cpuPer1000BPgoOff = [math]::Round($cpuBPgoOff, 3); cpuBPgoOffOverA = [math]::Round($cpuBPgoOff / $cpuA, 2)
            BpeakMiB = Get-Median ($runsB | ForEach-Object peakWorkingSetMiB)
            BtrackingPerDocument = Get-Median ($runsB | ForEach-Object { $_.trackingRequests / $_.documents })
            Bconcurrency = @($runsB | ForEach-Object concurrency)
            BconcurrencyReason = @($runsB | ForEach-Object concurrencyReason)
            runsA = @($runsA); runsB = @($runsB); runsB50 = @($runsB50); runsAPwsh = @($runsAPwsh); runsBNoJournal = @($runsBNoJournal); runsBulk = @($runsBulk); runsBPgoOff = @($runsBPgoOff); runC = $c; runCatchUp = $catchUp
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

    }

    if ($Section -contains 'Fairness') {
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

    }

    if ($Section -contains 'Distributed') {
    # Each size: one process, then 1 and 3 -Distributed workers, on fresh copies of the same
    # documents, timed alike (first command to last return), -Repeat rounds; a round's ratios
    # are its own runs side by side, and their medians are reported. Every worker is a pwsh
    # process of its own, and pays pwsh's start, the import, the connection and the JIT again:
    # at -Documents that fixed cost is a large share of a run; at -DistributedDocuments, the
    # size where a distributed run is worth having, it is not. Both are reported.
    # The same 3 workers also run as thread jobs of one pwsh process (-OneProcess): they share one
    # runtime, so that run costs what the workers' coordination costs, without two more processes'
    # start and JIT. On real deployments each worker pays those on a machine of its own; here all
    # three share the 2 cores with the server. The goal is judged on separate processes.
    function Measure-Distributed([int] $Size, [int] $Count, [int] $Round, [switch] $OneProcess) {
        $container = "dist$Count$(if ($OneProcess) { 'one' })-$Size-$Round"
        $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, $container, "$Size")
        $before = Get-TrackingRequests
        $processCount = if ($OneProcess) { 1 } else { $Count }
        $processes = 1..$processCount | ForEach-Object {
            Start-Process -FilePath dotnet -PassThru -RedirectStandardOutput (Join-Path $Output "dist$Count-$_.json") -ArgumentList @(
                'pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/CosmosMigrations.Bench/RunModule.ps1'), $ModuleOut, $endpoint, $EmulatorKey, $database, $container, 'fd', '0', '0', '-Distributed', '-Workers', "$(if ($OneProcess) { $Count } else { 1 })")
        }
        $processes | ForEach-Object { $_.WaitForExit() }
        $workers = 1..$processCount | ForEach-Object { Get-Content (Join-Path $Output "dist$Count-$_.json") -Raw | ConvertFrom-Json }
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
            # The workers count their own writes coming back (the tracking document's echoes).
            ownWritesShareOfReads = [math]::Round([double]$(if ($null -ne $tracking.echoes) { $tracking.echoes } else { 0 }) / [math]::Max(1, $tracking.scanned), 3)
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
        Write-Host "==> distributed: 1 and 3 workers (and 3 in one process) at loopback over $size documents, beside one process ($Repeat rounds)" -ForegroundColor Cyan
        $rounds = foreach ($round in 1..$Repeat) {
            $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, "one$size-$round", "$size")
            $one = Invoke-Module "one$size-$round" 'fd'
            $kit.DeleteContainer($database, "one$size-$round")
            $runs = [ordered]@{
                single = [ordered]@{ seconds = $one.seconds; docsPerSecond = $one.docsPerSecond; ruPerDocument = [math]::Round($one.requestCharge / $size, 3)
                    cpuSeconds = $one.cpuSeconds; cpuBeforeRun = $one.cpuBeforeRun; jitMethodsBeforeRun = $one.jitMethodsBeforeRun; jitMethods = $one.jitMethods }
            }
            # Each kind of run: its key in the results, its workers, whether they share one process.
            foreach ($kind in @(@{ Key = '1'; Workers = 1; OneProcess = $false }, @{ Key = '3'; Workers = 3; OneProcess = $false }, @{ Key = '3one'; Workers = 3; OneProcess = $true })) {
                $run = Measure-Distributed $size $kind.Workers $round -OneProcess:$kind.OneProcess
                $run.ratio = [math]::Round($one.seconds / $run.seconds, 2)
                $runs[$kind.Key] = $run
            }
            $runs
        }
        $row = [ordered]@{ documents = $size; rounds = @($rounds) }
        $row.single = [ordered]@{ docsPerSecond = Get-Median @($rounds | ForEach-Object { $_.single.docsPerSecond }); cpuSeconds = Get-Median @($rounds | ForEach-Object { $_.single.cpuSeconds })
            cpuBeforeRun = Get-Median @($rounds | ForEach-Object { $_.single.cpuBeforeRun }); ruPerDocument = Get-Median @($rounds | ForEach-Object { $_.single.ruPerDocument }) }
        foreach ($count in '1', '3', '3one') {
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

    }

    if ($Section -contains 'RUBudget') {
    Write-Host '==> RU budget: 5 RU per request, -MaxRUPerSecond 2000' -ForegroundColor Cyan
    $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'ru', '8000')
    Set-Harness @{ requestCharge = 5 }
    $ru = Invoke-Module 'ru' 'fr' 2000
    Set-Harness @{}
    $results.ruBudget = [ordered]@{ budget = 2000; measuredRUPerSecond = $ru.ruPerSecond; ratio = [math]::Round($ru.ruPerSecond / 2000, 3) }

    }

    if ($Section -contains 'Journal') {
    # The journal: B without (-NoJournal) and with before-images (the default) take turns, each
    # run adding its own field; then each journaled run is undone (U). The local server charges
    # 1 RU a request, so RU per document here counts requests; bytes are as the service stores them.
    $results.journal = @()
    foreach ($condition in $latencies) {
        $container = "j$($condition.Latency)ms"
        Initialize-Condition $condition $container 'journal, '
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

    }

    if ($Section -contains 'Move') {
    # M: a move of -Documents documents to a new partition key, one run (copy, then cut-over).
    Write-Host "==> move: $Documents documents to a new partition key (Start-ContainerMove, then Complete-ContainerMove)" -ForegroundColor Cyan
    Set-Harness @{}
    $null = Invoke-Baseline @('seed', $endpoint, $EmulatorKey, $database, 'move', "$Documents")
    $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/RunMove.ps1') $ModuleOut $endpoint $EmulatorKey $database 'move' | Select-Object -Last 1
    if ($LASTEXITCODE -ne 0) { throw "bench move failed: $line" }
    $results.move = $line | ConvertFrom-Json
    if ($results.move.verifiedDocuments -ne $Documents) { throw "the move verified $($results.move.verifiedDocuments) documents, not $($Documents): $line" }

    }

    if ($Section -contains 'Import') {
    Write-Host '==> Import-Module: the module''s own load context against a plain binary module' -ForegroundColor Cyan
    $line = & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $Root 'tests/CosmosMigrations.Bench/MeasureImport.ps1') $ModuleOut $endpoint $EmulatorKey $database | Select-Object -Last 1
    if ($LASTEXITCODE -ne 0) { throw "import measurement failed: $line" }
    $results.import = $line | ConvertFrom-Json
    }

}
finally {
    Set-Harness @{}
    $kit.DeleteDatabase($database)
    # A server this task started does not outlive it.
    if (-not $wasRunning) { Stop-LocalCosmos }
}

$results.goals = [ordered]@{}
if ($results.Contains('scale')) {
    $results.goals.BoverA = @($results.conditions | ForEach-Object { $_.BoverA -ge 0.9 }) -notcontains $false
    $results.goals.BoverBulk = @($results.conditions | ForEach-Object { $_.BoverBulk -gt 1 }) -notcontains $false
    $results.goals.requestsPerDocument = @($results.conditions | ForEach-Object { $_.requestsPerDocument.B -le 1.05 }) -notcontains $false
    $results.goals.cpu = @($results.conditions | ForEach-Object { $_.cpuBoverA -le 1.15 }) -notcontains $false
    $results.goals.BoverC = ($results.conditions | Where-Object condition -EQ '5 ms').BoverC -ge 10
    $results.goals.scaleRate = $results.scale.docsPerSecondRatio -ge 0.9
    $results.goals.scaleMemory = $results.scale.peakMiBRatio -le 1.15
    $results.goals.scaleTracking = $results.scale.trackingPerDocument -le $results.scale.smallTrackingPerDocument
}
if ($results.Contains('ruBudget')) { $results.goals.ruBudget = $results.ruBudget.ratio -ge 0.9 -and $results.ruBudget.ratio -le 1.05 }
if ($results.Contains('fairness')) { $results.goals.fairness = $results.fairness.othersSlowdown -lt 0.2 }
foreach ($row in $(if ($results.Contains('distributed')) { $results.distributed.sizes })) {
    $results.goals["distributed1At$($row.documents)"] = $row['1'].ratio -ge 0.9
    $results.goals["distributed3At$($row.documents)"] = $row['3'].ratio -ge 0.8
    $results.goals["distributedExactAt$($row.documents)"] = $row['1'].exact -and $row['3'].exact -and $row['3one'].exact
}
$benchDir = Join-Path $Output 'bench'
New-Item -ItemType Directory -Path $benchDir -Force | Out-Null
$file = Join-Path $benchDir "bench-$(Get-Date -Format 'yyyyMMdd-HHmmss').json"
$results | ConvertTo-Json -Depth 6 | Set-Content $file
& (Join-Path $PSScriptRoot 'Write-BenchReport.ps1') -Results $results -File $file
