# -Distributed: worker processes share one migration through the change feed processor, on the
# local server's several feed ranges (and splits), with workers killed, added and stopped.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase

    # Under pressure (COSMOSMIGRATIONS_PRESSURE=1, tools/Invoke-DistributedPressure.ps1): the
    # shortest lease, and CPU busy loops beside the workers (bounded in time, stopped after the
    # file), so that leases are stolen and workers stall as on a loaded machine.
    $script:Pressure = $env:COSMOSMIGRATIONS_PRESSURE -eq '1'
    $script:Lease = if ($script:Pressure) { '00:00:05' } else { '00:00:06' }
    $script:Busy = @(if ($script:Pressure) {
        1..2 | ForEach-Object { Start-Process timeout -PassThru -ArgumentList '1200 sh -c "while :; do :; done"' }
    })

    # A worker returns within a lease, the processor's estimator interval (a beat) and a few
    # seconds of the migration's completion; the figures go to the pressure log when one is named.
    function Assert-ReturnLatency([string] $Name, [string[]] $Logs) {
        $tracking = Get-Tracking $Name
        $lastChange = [long](@($script:Kit.ReadAllJson($script:Database, $tracking.container, 'SELECT VALUE MAX(c._ts) FROM c'))[0]) * 1000
        $latencies = foreach ($log in $Logs) {
            $result = Get-RunnerResult $log
            if ($result.Status -eq 'completed') { $result.ReturnedAt - [Math]::Max($tracking.completedAt, $lastChange) }
        }
        $worst = ($latencies | Measure-Object -Maximum).Maximum
        if ($env:COSMOSMIGRATIONS_PRESSURE_LOG) {
            @{ test = $Name; processed = $tracking.processed; worstReturnMs = $worst; completedAfterLastChangeMs = $tracking.completedAt - $lastChange } | ConvertTo-Json -Compress | Add-Content $env:COSMOSMIGRATIONS_PRESSURE_LOG
        }
        $budget = ([TimeSpan]::Parse($script:Lease).TotalMilliseconds * 7 / 6) + 8000
        $worst | Should -BeLessOrEqual $budget -Because "every worker returns within a lease, a beat and a few seconds of the last change ($($latencies -join ', ') ms)"
    }

    # A worker process running one distributed migration (Start-Runner); its status is its result.
    function Start-Worker([string] $Log, [string] $Command, [int] $Together = 0) {
        Start-Runner "`$s = $Command -Distributed -LeaseDuration $($script:Lease) -Verbose -ErrorVariable ev`n`$ev | ForEach-Object { 'INNER: ' + `$_.Exception.InnerException }`nSet-RunnerResult (`$s | Select-Object Name, Status, Outcome, Processed, @{ n = 'ReturnedAt'; e = { [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() } })" $Log -Together $Together
    }
}

AfterAll {
    $script:Busy | ForEach-Object { if (-not $_.HasExited) { $_.Kill($true) } }
    Remove-TestDatabase
}

Describe 'Workers sharing one migration' -Skip:(-not $script:IsHarness) {
    It 'three workers over 15,000 documents on 8 ranges: each does a share, every document changed once, all return completed' {
        $total = 15000
        New-SeededContainer 'dist8' $total 300
        Split-Range 'dist8' 4 | Should -Be 8
        $before = Get-HarnessStats

        # Each worker at a budget, as workers sharing an account are: the run then lasts long
        # enough for the processor's balancing (a range per lease-acquire interval) to matter.
        # (The run lasts as long as at twice the documents and twice the budget; the server's
        # work, which grows faster than the documents, is what halves.)
        $logs = Invoke-RunnersTogether (Join-Path $TestDrive 'three') 3 'dist-three' { Start-Worker $args[0] "Start-SchemaMigration -Name dist-three -Container dist8 -Operation @{ AddField = 'd3'; Value = 1 } -MaxRUPerSecond 400" -Together 3 }

        foreach ($log in $logs) {
            $result = Get-RunnerResult $log
            $result.Status | Should -Be 'completed' -Because (Get-Content $log -Raw)
            $result.Processed | Should -Be $total
        }
        Assert-WorkerShares 'dist-three' 3 $total
        $script:Kit.Count($script:Database, 'dist8', 'c.d3 = 1') | Should -Be $total
        ((Get-MethodCount (Get-HarnessStats) 'PATCH 200' 'dist8') - (Get-MethodCount $before 'PATCH 200' 'dist8')) | Should -Be $total -Because 'no document was changed twice'
        $status = Get-MigrationStatus -Name dist-three
        $status.Workers.Count | Should -Be 3
        $status.Concurrency | Should -BeGreaterThan 0 -Because 'the worker that ended the run recorded its controller''s limit'
        $status.ConcurrencyReason | Should -Not -BeNullOrEmpty
        Assert-ReturnLatency 'dist-three' $logs
    }

    It 'a worker killed mid-run hands its ranges over, a newcomer joins, a split happens, the application writes: totals stay exact, nothing is lost' {
        $total = 20000
        New-SeededContainer 'dist4' $total 200
        $before = Get-HarnessStats
        $command = "Start-SchemaMigration -Name dist-chaos -Container dist4 -Operation @{ AddField = 'd4'; Value = 1 }"
        $a = Join-Path $TestDrive 'chaos-a.log'; $b = Join-Path $TestDrive 'chaos-b.log'; $c = Join-Path $TestDrive 'chaos-c.log'
        $null = Start-Worker $a $command
        $workerB = Start-Worker $b $command
        if (-not (Wait-Until { (Get-Tracking 'dist-chaos').processed -gt 3000 } 60)) {
            # What the workers said and what the tracking document holds, read now, not before the wait.
            throw "The workers did not pass 3,000 documents in 60 s.`nWorker a: $(Get-Content $a -Raw -ErrorAction SilentlyContinue)`nWorker b: $(Get-Content $b -Raw -ErrorAction SilentlyContinue)`nTracking: $($script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = 'dist-chaos'"))"
        }
        Stop-Runner $a
        # The application keeps writing its own field meanwhile (a patch the migration must not undo).
        $app = 0..199 | ForEach-Object { "d$($_ * 97)" }
        $app | Select-Object -First 100 | ForEach-Object { $n = [int]$_.Substring(1); $script:Kit.PatchField($script:Database, 'dist4', $_, "p$($n % 200)", 'app', 'kept') }
        $workerC = Start-Worker $c $command
        $null = $script:Kit.Split($script:Database, 'dist4', $null)
        $app | Select-Object -Skip 100 | ForEach-Object { $n = [int]$_.Substring(1); $script:Kit.PatchField($script:Database, 'dist4', $_, "p$($n % 200)", 'app', 'kept') }
        Wait-Runner $workerB $b 'dist-chaos'
        Wait-Runner $workerC $c 'dist-chaos'

        (Get-RunnerResult $b).Status | Should -Be 'completed' -Because (Get-Content $b -Raw)
        (Get-RunnerResult $c).Status | Should -Be 'completed' -Because (Get-Content $c -Raw)
        $tracking = Get-Tracking 'dist-chaos'
        $tracking.processed | Should -Be $total -Because 'the killed worker''s unfinished batch was counted by the worker that took its range over'
        $tracking.PSObject.Properties.Name | Should -Contain 'pending'
        @($tracking.pending.PSObject.Properties).Count | Should -Be 0
        @($tracking.workers.PSObject.Properties).Count | Should -Be 3
        $newcomer = @($tracking.workers.PSObject.Properties | Where-Object Name -Like "*-$(Get-Content "$c.pid")-*")
        $newcomer.Count | Should -Be 1
        $newcomer[0].Value.scanned | Should -BeGreaterThan 0 -Because 'the worker added in the middle received feed ranges'
        $script:Kit.Count($script:Database, 'dist4', 'c.d4 = 1') | Should -Be $total
        $script:Kit.Count($script:Database, 'dist4', "c.app = 'kept'") | Should -Be 200 -Because 'no application write was lost'
        ((Get-MethodCount (Get-HarnessStats) 'PATCH 200' 'dist4') - (Get-MethodCount $before 'PATCH 200' 'dist4')) | Should -Be ($total + 200) -Because 'each document was changed once by the migration (and the application''s 200 patches)'
        Assert-ReturnLatency 'dist-chaos' @($b, $c)
    }

    It 'Stop-SchemaMigration stops every worker; a later distributed start resumes from the leases'' checkpoints' {
        $total = 10000
        New-SeededContainer 'diststop' $total 200
        $command = "Start-SchemaMigration -Name dist-stop -Container diststop -Operation @{ AddField = 'ds'; Value = 1 }"
        $logs = 1..2 | ForEach-Object { Join-Path $TestDrive "stop-$_.log" }
        $workers = $logs | ForEach-Object { Start-Worker $_ $command }
        Wait-Until { (Get-Tracking 'dist-stop').processed -gt 2000 } 120 | Should -BeTrue
        $running = Get-MigrationStatus -Name dist-stop
        $running.Status | Should -Be 'running' -Because "$($running.Error) $($logs | ForEach-Object { Get-Content $_ -Raw -ErrorAction SilentlyContinue })"
        Stop-SchemaMigration -Name dist-stop
        $workers | ForEach-Object { $_.WaitForExit(60000) | Should -BeTrue }
        $logs | ForEach-Object { (Get-RunnerResult $_).Outcome | Should -Be 'Stopped' }
        $stopped = Get-MigrationStatus -Name dist-stop
        $stopped.Status | Should -Be 'cancelled'
        $stopped.StopReason | Should -Be 'StopRequested'
        $stopped.Processed | Should -BeLessThan $total

        $resumed = Start-SchemaMigration -Name dist-stop -Container diststop -Operation @{ AddField = 'ds'; Value = 1 } -Distributed -LeaseDuration $($script:Lease)
        $resumed.Status | Should -Be 'completed'
        $resumed.Outcome | Should -Be 'Resumed'
        $resumed.Processed | Should -Be $total
        $resumed.Scanned | Should -BeLessThan (2 * $total + $stopped.Scanned) -Because 'the ranges resumed from their checkpoints, not from the beginning'
        $script:Kit.Count($script:Database, 'diststop', 'c.ds = 1') | Should -Be $total
    }

    It '-Follow converts what the application writes in the old shape, until Stop-SchemaMigration completes it; no single runner may start meanwhile' {
        New-SeededContainer 'follow' 500 10
        $log = Join-Path $TestDrive 'follow.log'
        $worker = Start-Runner "Set-RunnerResult (Start-SchemaMigration -Name follow-add -Container follow -Operation @{ AddField = 'fl'; Value = 1 } -Distributed -Follow -LeaseDuration $($script:Lease) | Select-Object Name, Status, Outcome, Processed)" $log
        Wait-Until { (Get-MigrationStatus -Name follow-add).Phase -eq 'following' } 120 | Should -BeTrue
        $script:Kit.Count($script:Database, 'follow', 'NOT IS_DEFINED(c.fl)') | Should -Be 0

        # The old application writes documents in the old shape: converted within seconds.
        $script:Kit.Seed($script:Database, 'follow', 50, 10, 500, $null)
        Wait-Until { $script:Kit.Count($script:Database, 'follow', 'NOT IS_DEFINED(c.fl)') -eq 0 } 30 | Should -BeTrue

        # A worker is following: a single runner is refused, naming the workers.
        $refused = { Start-SchemaMigration -Name follow-add -Container follow -Operation @{ AddField = 'fl'; Value = 1 } -ErrorAction Stop } | Should -Throw -PassThru
        $refused.FullyQualifiedErrorId | Should -BeLike 'MigrationAlreadyRunning,*'
        $refused.Exception.Message | Should -Match 'distributed worker'

        Stop-SchemaMigration -Name follow-add
        $worker.WaitForExit(60000) | Should -BeTrue
        (Get-RunnerResult $log).Status | Should -Be 'completed'
        (Get-MigrationStatus -Name follow-add).Processed | Should -Be 550
    }

    It 'a worker builds only the fields its operations touch, yet a change too large for one patch keeps every other field' {
        New-SeededContainer 'distwide' 300 6
        $before = Get-UserContent 'distwide'
        # Eleven fields: more than one patch may carry, so each document is replaced whole, read
        # whole first (the feed's items were built with only the fields the operations name).
        $operations = 1..11 | ForEach-Object { @{ AddField = "f$_"; Value = $_ } }
        $run = Start-SchemaMigration -Name dist-wide -Container distwide -Operation $operations -Distributed -LeaseDuration $($script:Lease)
        $run.Status | Should -Be 'completed'
        $run.Processed | Should -Be 300
        $script:Kit.Count($script:Database, 'distwide', 'c.f1 = 1 AND c.f11 = 11') | Should -Be 300
        $after = Get-UserContent 'distwide' | ForEach-Object {
            $document = $_ | ConvertFrom-Json -AsHashtable
            1..11 | ForEach-Object { $document.Remove("f$_") }
            $sorted = [ordered]@{}
            foreach ($key in ($document.Keys | Sort-Object)) { $sorted[$key] = $document[$key] }
            $sorted | ConvertTo-Json -Compress -Depth 10
        } | Sort-Object
        $after | Should -Be $before
    }

    It 'a filter selects exactly what it selects in a single run, for patches and for transforms' {
        New-SeededContainer 'distfilter' 1000 10
        $set = Invoke-Backfill -Container distfilter -Name dist-filter-set -Filter "c.pk = 'p3'" -Set @{ chosen = 1 } -Distributed -LeaseDuration $($script:Lease)
        $transform = Invoke-Backfill -Container distfilter -Name dist-filter-transform -Filter "c.pk = 'p4'" -ScriptBlock { param($doc) $doc.picked = 1; $doc } -Distributed -LeaseDuration $($script:Lease)
        $set.Status, $transform.Status | Should -Be 'completed', 'completed'
        $set.Processed | Should -Be 100
        $transform.Processed | Should -Be 100
        $script:Kit.Count($script:Database, 'distfilter', 'IS_DEFINED(c.chosen)') | Should -Be 100
        $script:Kit.Count($script:Database, 'distfilter', "IS_DEFINED(c.chosen) AND c.pk != 'p3'") | Should -Be 0
        $script:Kit.Count($script:Database, 'distfilter', 'IS_DEFINED(c.picked)') | Should -Be 100
        $script:Kit.Count($script:Database, 'distfilter', "IS_DEFINED(c.picked) AND c.pk != 'p4'") | Should -Be 0
    }
}

Describe 'Distributed runs refuse what cannot work, writing nothing' {
    It 'refuses -WhatIf with -Distributed' {
        New-SeededContainer 'distbad' 20 2
        $refused = { Start-SchemaMigration -Name dist-whatif -Container distbad -Operation @{ AddField = 'w'; Value = 1 } -Distributed -WhatIf -ErrorAction Stop } | Should -Throw -PassThru
        $refused.FullyQualifiedErrorId | Should -BeLike 'DistributedWhatIf,*'
        Get-Tracking 'dist-whatif' | Should -BeNullOrEmpty
        $script:Kit.Count($script:Database, 'distbad', 'IS_DEFINED(c.w)') | Should -Be 0
    }

    It 'refuses -Follow without -Distributed' {
        $refused = { Start-SchemaMigration -Name dist-follow-alone -Container distbad -Operation @{ AddField = 'w'; Value = 1 } -Follow -ErrorAction Stop } | Should -Throw -PassThru
        $refused.FullyQualifiedErrorId | Should -BeLike 'FollowNeedsDistributed,*'
        Get-Tracking 'dist-follow-alone' | Should -BeNullOrEmpty
    }

    It 'refuses a lease container it cannot use (another partition key), before anything is written' {
        $script:Kit.CreateContainer($script:Database, 'odd-leases', '/pk')
        try {
            $context = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -TrackingContainer odd -SkipCertificateCheck -PassThru
            $refused = { Start-SchemaMigration -Name dist-odd -Container distbad -Operation @{ AddField = 'w'; Value = 1 } -Distributed -Context $context -ErrorAction Stop } | Should -Throw -PassThru
        }
        finally { Connect-Test $script:Database }
        $refused.FullyQualifiedErrorId | Should -BeLike 'LeaseContainerInvalid,*'
        $refused.Exception.Message | Should -Match "odd-leases"
        @($script:Kit.ReadAllJson($script:Database, 'odd')).Count | Should -Be 0 -Because 'no tracking document was written'
        $script:Kit.Count($script:Database, 'distbad', 'IS_DEFINED(c.w)') | Should -Be 0
    }

    It 'refuses to join a migration that a single runner holds' -Skip:(-not $script:IsHarness) {
        New-SeededContainer 'distheld' 2000 20
        $log = Join-Path $TestDrive 'held.log'
        $single = Start-Runner "Start-SchemaMigration -Name dist-held -Container distheld -Operation @{ AddField = 'h'; Value = 1 } -MaxRUPerSecond 200" $log
        try {
            Wait-Until { (Get-MigrationStatus -Name dist-held).Owner } 60 | Should -BeTrue
            $refused = { Start-SchemaMigration -Name dist-held -Container distheld -Operation @{ AddField = 'h'; Value = 1 } -Distributed -ErrorAction Stop } | Should -Throw -PassThru
            $refused.FullyQualifiedErrorId | Should -BeLike 'MigrationAlreadyRunning,*'
            (Get-Tracking 'dist-held').PSObject.Properties.Name | Should -Not -Contain 'workers'
        }
        finally {
            Stop-SchemaMigration -Name dist-held -ErrorAction SilentlyContinue
            $single.WaitForExit(60000) | Out-Null
        }
    }
}
