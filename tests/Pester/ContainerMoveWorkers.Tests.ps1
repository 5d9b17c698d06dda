# A move shared by worker processes (-Distributed), one of them SIGKILLed mid-copy, and a split of
# a source range mid-copy: the cut-over's verification, and the tests' own comparison of both
# sides, find the target equal to the source, with exactly the source's documents. Processed is
# exact: a batch delivered again after a range changes hands (or a kill, or a split) is written
# again, but each source version counts once.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
    $script:Lease = '00:00:06'

    # A worker process running one move with -Distributed (Start-Runner); its status is its result.
    function Start-MoveWorker([string] $Log, [string] $Move, [int] $Together = 0) {
        Start-Runner "Set-RunnerResult ($Move -Distributed -LeaseDuration $($script:Lease) -Confirm:`$false -Verbose | Select-Object Name, Status, Phase, Processed)" $Log -Together $Together
    }
}

AfterAll { Remove-TestDatabase }

Describe 'A move shared by workers' -Skip:(-not $script:IsHarness) {
    It 'two workers on 8 ranges: each copies a share, their counts add up to the run total, and the target holds exactly the documents of the source' {
        $total = 6000
        New-SeededContainer 'mv8' $total 200
        Split-Range 'mv8' 4 | Should -Be 8

        # At a budget each, so that the copy lasts long enough for the ranges to be balanced (the
        # processor moves a range per lease-acquire interval, a second).
        $logs = Invoke-RunnersTogether (Join-Path $TestDrive 'two') 2 'mv-two' { Start-MoveWorker $args[0] 'Start-ContainerMove -Name mv-two -Container mv8 -Target mv8-by-email -PartitionKey /email -MaxRUPerSecond 300' -Together 2 }

        foreach ($log in $logs) {
            $result = Get-RunnerResult $log
            $result.Status | Should -Be 'copied' -Because (Get-Content $log -Raw)
        }
        # Exact although ranges changed hands while the workers balanced them: each source version counts once.
        Assert-WorkerShares 'mv-two' 2 $total
        (Get-MigrationStatus -Name mv-two).Workers.Count | Should -Be 2

        $done = Complete-ContainerMove -Name mv-two -Confirm:$false
        $done.Status | Should -Be 'completed'
        (Get-Tracking 'mv-two').move.verifiedDocuments | Should -Be $total
        $script:Kit.Count($script:Database, 'mv8-by-email') | Should -Be $total
        (Get-UserContent mv8-by-email) | Should -Be (Get-UserContent mv8)
    }

    It 'refuses a second process without -Distributed while workers copy, and writes nothing' {
        $script:Kit.CreateContainer($script:Database, 'mvx', '/pk')
        # 1,500 at 200 RU/s: the copy lasts seconds after it started, while the second process is refused.
        $script:Kit.Seed($script:Database, 'mvx', 1500, 60, 0, $null)
        $log = Join-Path $TestDrive 'alone.log'
        $worker = Start-MoveWorker $log 'Start-ContainerMove -Name mv-alone -Container mvx -Target mvx2 -PartitionKey /email -MaxRUPerSecond 200'
        Wait-Until { (Get-Tracking 'mv-alone').status -eq 'running' -and (Get-Tracking 'mv-alone').processed -gt 0 } 90 | Should -BeTrue
        $tracking = Get-Tracking 'mv-alone'

        $result = Start-ContainerMove -Name mv-alone -Container mvx -Target mvx2 -PartitionKey /email -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'MoveAlreadyRunning,CosmosMigrations.PowerShell.Commands.StartContainerMoveCommand'
        $failed[0].Exception.Message | Should -Match 'being copied by'
        $failed[0].ErrorDetails.RecommendedAction | Should -Match '-Distributed'
        @((Get-Tracking 'mv-alone').workers.PSObject.Properties).Count | Should -Be @($tracking.workers.PSObject.Properties).Count -Because 'the refused process did not join'

        Wait-Runner $worker $log 'mv-alone'
        (Get-RunnerResult $log).Status | Should -Be 'copied' -Because (Get-Content $log -Raw)
        (Complete-ContainerMove -Name mv-alone -Confirm:$false).Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'mvx2') | Should -Be 1500
    }

    It 'a worker SIGKILLed mid-copy: the other takes its ranges over, the count stays exact, and the target equals the source after the cut-over' {
        $total = 5000
        New-SeededContainer 'mvk' $total 100
        Get-RangeCount 'mvk' | Should -BeGreaterThan 1
        $folder = New-Item -ItemType Directory (Join-Path $TestDrive 'kill')
        $a = Join-Path $folder 'kill-a.log'; $b = Join-Path $folder 'kill-b.log'
        $move = 'Start-ContainerMove -Name mv-kill -Container mvk -Target mvk2 -PartitionKey /email -MaxRUPerSecond 400'
        $null = Start-MoveWorker $a $move -Together 2
        $workerB = Start-MoveWorker $b $move -Together 2
        if (-not (Wait-Until { (Get-Tracking 'mv-kill').processed -gt 1000 } 90)) {
            throw "The workers did not pass 1,000 documents in 90 s.`nWorker a: $(Get-Content $a -Raw -ErrorAction SilentlyContinue)`nWorker b: $(Get-Content $b -Raw -ErrorAction SilentlyContinue)"
        }
        (Get-Tracking 'mv-kill').processed | Should -BeLessThan $total -Because 'the kill comes mid-copy'
        Stop-Runner $a
        Wait-Runner $workerB $b 'mv-kill'

        (Get-RunnerResult $b).Status | Should -Be 'copied' -Because (Get-Content $b -Raw)
        $tracking = Get-Tracking 'mv-kill'
        $tracking.processed | Should -Be $total -Because 'the killed worker''s unfinished batch was copied again by the worker that took its range over, and counted once'
        @($tracking.pending.PSObject.Properties).Count | Should -Be 0 -Because 'no batch is left open'

        $done = Complete-ContainerMove -Name mv-kill -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Message | Should -Match "same $total document"
        (Get-Tracking 'mv-kill').move.verifiedDocuments | Should -Be $total
        $script:Kit.Count($script:Database, 'mvk2') | Should -Be $total
        $script:Kit.Count($script:Database, 'mvk') | Should -Be $total
        (Get-UserContent mvk2) | Should -Be (Get-UserContent mvk)
    }
}

Describe 'A split of a source range mid-copy' -Skip:(-not $script:IsHarness) {
    It 'copies the children''s documents: the target equals the source after the cut-over' {
        $total = 3000
        New-SeededContainer 'mvs' $total 100
        $ranges = Get-RangeCount 'mvs'
        $mover = Start-ConnectedJob 'Start-ContainerMove -Name mv-split -Container mvs -Target mvs2 -PartitionKey /email -MaxRUPerSecond 400 -LeaseDuration 00:00:06 -Confirm:$false'
        Wait-Until { (Get-Tracking 'mv-split').processed -gt 500 } 90 | Should -BeTrue
        (Get-Tracking 'mv-split').processed | Should -BeLessThan $total -Because 'the split comes mid-copy'
        Split-Range 'mvs' 2 | Should -Be ($ranges + 2)
        # The application writes to the children too.
        $script:Kit.Seed($script:Database, 'mvs', 100, 100, $total, $null)

        $status = $mover | Wait-Job -Timeout 180 | Receive-Job
        $mover.State | Should -Be 'Completed'
        $status.Status | Should -Be 'copied'
        $status.Processed | Should -Be ($total + 100) -Because 'a child range carries on from its parent''s checkpoint, and what the parent counted is not counted again'

        $done = Complete-ContainerMove -Name mv-split -Confirm:$false
        $done.Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'mvs2') | Should -Be ($total + 100)
        (Get-UserContent mvs2) | Should -Be (Get-UserContent mvs)
    }
}
