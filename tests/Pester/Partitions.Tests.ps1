# Migrations on containers of several physical partitions (the harness's default), through the
# module: one checkpoint per feed range, splits while a migration runs, and a crash across a split.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase

    # The harness's id of each physical range whose feed range the migration's checkpoint holds
    # a continuation for (part way through), or, with -NotStarted, of those it has not begun.
    function Get-CheckpointedRange([string] $Name, [string] $Container, [switch] $NotStarted) {
        $live = ($script:Kit.Ranges($script:Database, $Container) | ConvertFrom-Json).ranges
        foreach ($cursor in @((Get-Tracking $Name).cursor.ranges)) {
            $started = [bool]$cursor.continuation -and -not $cursor.done
            if ($NotStarted) { $started = -not $cursor.continuation -and -not $cursor.done }
            if (-not $started) { continue }
            $min = ($cursor.range | ConvertFrom-Json).Range.min
            ($live | Where-Object minInclusive -EQ $min | Select-Object -First 1).id
        }
    }
}

AfterAll { Remove-TestDatabase }

Describe 'A migration over several feed ranges' {
    It 'keeps one continuation per range in its tracking document and changes each of 8,000 documents exactly once' {
        # 4,000 documents of 40 pages are scanned side by side from every range: part way through each.
        $total = 8000
        New-SeededContainer 'big' $total 200
        $before = if ($script:IsHarness) { Get-HarnessStats }

        # A time slice stops part way through every range (they are scanned side by side).
        $slice = Start-SchemaMigration -Name big-add -Container big -Operation @{ AddField = 'migrated'; Value = $true } -MaxBatches 40
        $slice.Status | Should -Be 'cancelled'
        $cursor = (Get-Tracking 'big-add').cursor
        $ranges = @($cursor.ranges)
        if ($script:IsHarness) { $ranges.Count | Should -Be (Get-RangeCount 'big') }
        $ranges.Count | Should -BeGreaterThan 1 -Because 'the suite runs on several ranges'
        @($ranges.range | Select-Object -Unique).Count | Should -Be $ranges.Count
        @($ranges | Where-Object { $_.continuation -and -not $_.done }).Count | Should -Be $ranges.Count -Because 'each range keeps its own continuation'
        $slice.Scanned | Should -Be 4000

        $final = Start-SchemaMigration -Name big-add -Container big -Operation @{ AddField = 'migrated'; Value = $true }
        $final.Status | Should -Be 'completed'
        $final.Scanned | Should -Be $total -Because 'the second slice resumed every range where it stopped'
        $final.Processed | Should -Be $total
        $script:Kit.Count($script:Database, 'big', 'c.migrated = true') | Should -Be $total
        if ($script:IsHarness) {
            $after = Get-HarnessStats
            ((Get-MethodCount $after 'PATCH 200' 'big') - (Get-MethodCount $before 'PATCH 200' 'big')) | Should -Be $total -Because 'no document was changed twice'
        }
    }
}

Describe 'Splits' -Skip:(-not $script:IsHarness) {
    It 'lose and repeat nothing when ranges split while a migration runs' {
        $total = 4000
        New-SeededContainer 'splitting' $total 40
        $rangesBefore = Get-RangeCount 'splitting'
        $before = Get-HarnessStats
        $job = Start-ConnectedJob "Start-SchemaMigration -Name split-add -Container splitting -Operation @{ AddField = 'v'; Value = 1 } -BatchSize 20 -MaxDegreeOfParallelism 1"

        # The range being scanned splits under the runner, then (without a range) the fullest.
        foreach ($progress in 600, 1800) {
            Wait-Until { (Get-MigrationStatus -Name split-add).Processed -ge $progress } 60 | Should -BeTrue
            $range = if ($progress -eq 600) { @(Get-CheckpointedRange split-add splitting)[0] } else { $null }
            $split = $script:Kit.Split($script:Database, 'splitting', $range) | ConvertFrom-Json
            Write-Host "    split range $($split.parent) into $($split.children -join ', ') at $((Get-MigrationStatus -Name split-add).Processed) documents"
        }

        $status = $job | Wait-Job -Timeout 120 | Receive-Job
        $status.Status | Should -Be 'completed'
        (Get-RangeCount 'splitting') | Should -Be ($rangesBefore + 2)
        $status.Scanned | Should -Be $total
        $status.Processed | Should -Be $total
        $script:Kit.Count($script:Database, 'splitting', 'c.v = 1') | Should -Be $total
        ((Get-MethodCount (Get-HarnessStats) 'PATCH 200' 'splitting') - (Get-MethodCount $before 'PATCH 200' 'splitting')) | Should -Be $total -Because 'no document was changed twice'
    }

    It 'lose and repeat nothing when a killed runner resumes after its ranges split' {
        $total = 3000
        New-SeededContainer 'killsplit' $total 30
        $before = Get-HarnessStats
        $operation = '@{ Transform = { param($doc) if ($doc.migrated) { return $null }; $doc.migrated = $true; $doc } }'
        $log = Join-Path $TestDrive 'killsplit.log'
        $process = Start-Runner "Start-SchemaMigration -Name killsplit -Container killsplit -BatchSize 20 -MaxDegreeOfParallelism 1 -LeaseDuration 00:00:05 -Operation $operation" $log
        # Killed part way through a range (not in the instant between one range's last
        # checkpoint and the next one's first, when none is in progress).
        if (-not (Wait-Until { (Get-MigrationStatus -Name killsplit | Where-Object { $_.Owner -and $_.Processed -ge 800 }) -and @(Get-CheckpointedRange killsplit killsplit).Count -ge 1 } 60)) {
            throw "the runner never reached 800 documents: $(Get-Content $log -Raw -ErrorAction SilentlyContinue)"
        }
        Stop-Runner $log
        $process.Kill($true)
        $killed = Get-MigrationStatus -Name killsplit
        $killed.Status | Should -Be 'running' -Because 'the runner died holding its lease'
        $checkpoint = @((Get-Tracking 'killsplit').cursor.ranges)

        # While no runner is alive, the range it was part way through splits, and one it has not
        # begun.
        $inProgress = @(Get-CheckpointedRange killsplit killsplit)
        $notStarted = @(Get-CheckpointedRange killsplit killsplit -NotStarted)
        $inProgress.Count | Should -Be 1 -Because 'one range at a time with -MaxDegreeOfParallelism 1'
        foreach ($range in $inProgress[0], $notStarted[0]) { $null = $script:Kit.Split($script:Database, 'killsplit', $range) }
        Wait-Until { -not (Get-MigrationStatus -Name killsplit).Owner } 30 | Should -BeTrue
        $final = Start-SchemaMigration -Name killsplit -Container killsplit -Operation @{ Transform = { param($doc) if ($doc.migrated) { return $null }; $doc.migrated = $true; $doc } }
        $final.Status | Should -Be 'completed'
        $final.Outcome | Should -Be 'Resumed'
        $final.Scanned | Should -Be $total -Because 'the stored range continuations were resumed on the children: no page read twice or skipped'
        @($checkpoint).Count | Should -BeGreaterThan 1
        $script:Kit.Count($script:Database, 'killsplit', 'c.migrated = true') | Should -Be $total
        ((Get-MethodCount (Get-HarnessStats) 'PUT 200' 'killsplit') - (Get-MethodCount $before 'PUT 200' 'killsplit')) | Should -Be $total -Because 'no document was changed twice'
    }
}
