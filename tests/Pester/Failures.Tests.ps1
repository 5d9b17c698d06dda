# Documents that cannot be migrated, time slices and Ctrl+C: each leaves a resumable migration.
# -Skip is decided at discovery: the fault injection test needs to know it then.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
    New-SeededContainer 'items' 400 4
    # d13 and d250 cannot be converted: their transform throws.
    $script:Picky = { param($doc) if ($doc.id -in 'd13', 'd250') { throw "cannot handle $($doc.id)" }; if ($doc.done) { return $null }; $doc.done = $true; $doc }
}

AfterAll { Remove-TestDatabase }

Describe 'A document that cannot be migrated' {
    It 'fails the run with its id, keeping the checkpoint before its page' {
        $result = Invoke-Backfill -Container items -Name picky -ScriptBlock $script:Picky -BatchSize 50 -ErrorVariable failure -ErrorAction SilentlyContinue
        $result.Status | Should -Be 'failed'
        # Pages follow the service's order, not the ids': either bad document may be met first.
        $result.Error | Should -Match "Document '(d13|d250)'"
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'DocumentMigrationFailed,*'
        $failure[0].CategoryInfo.Category | Should -Be 'WriteError'
        $failure[0].ErrorDetails.RecommendedAction | Should -Match 'MaxFailures'
        $result.Scanned | Should -BeLessThan 400
        (Get-MigrationStatus -Name picky).Failures[0].Id | Should -BeIn @('d13', 'd250')
    }

    It 'is recorded and skipped with -MaxFailures, and the run completes' {
        $result = Invoke-Backfill -Container items -Name picky -ScriptBlock $script:Picky -BatchSize 50 -MaxFailures 5 -WarningVariable warned -WarningAction SilentlyContinue
        # Completed, but not clean: the two documents wait in the failure store (issue 27).
        $result.Status | Should -Be 'completedWithFailures'
        $result.Failed | Should -Be 2
        $result.FailedByClass.Transform | Should -Be 2
        "$warned" | Should -Match "Get-MigrationFailure -Name 'picky'"
        @($result.Failures.Id | Sort-Object) | Should -Be @('d13', 'd250')
        $result.Failures[0].Error | Should -Match 'cannot handle'
        $script:Kit.Count($script:Database, 'items', 'c.done = true') | Should -Be 398
    }
}

Describe 'The failure store' {
    BeforeAll {
        # 10,000 documents, 1 % of them (d7, d107, …, d9907) poison for the transform.
        New-SeededContainer 'poison' 10000 8
        $script:Poisonous = { param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.clean) { return $null }; $doc.clean = $true; $doc }
    }

    It 'a run with 1 % poison completes with failures at -MaxFailureRate 0.02, every failed document in the store with its class and before-image' {
        $result = Invoke-Backfill -Container poison -Name poison-rate -ScriptBlock $script:Poisonous -BatchSize 200 -MaxFailureRate 0.02 -WarningAction SilentlyContinue
        $result.Status | Should -Be 'completedWithFailures'
        $result.Processed | Should -Be 9900 -Because 'a failed document is not counted as changed'
        $result.Failed | Should -Be 100
        $result.FailedByClass.Transform | Should -Be 100
        $result.FailedByClass.Refused + $result.FailedByClass.Exhausted | Should -Be 0
        $script:Kit.Count($script:Database, 'poison', 'c.clean = true') | Should -Be 9900

        $failures = @(Get-MigrationFailure -Name poison-rate)
        $failures.Count | Should -Be 100
        @($failures.Id | Sort-Object -Unique).Count | Should -Be 100
        $failures | ForEach-Object {
            $_.GetType().FullName | Should -Be 'CosmosMigrations.MigrationFailure'
            [int]$_.Id.Substring(1) % 100 | Should -Be 7
            $_.Name | Should -Be 'poison-rate'
            $_.Step | Should -Be 1
            $_.Class | Should -Be 'Transform'
            $_.Error | Should -Match "poison $($_.Id)"
            $_.Attempts | Should -Be 1
            $_.PartitionKey | Should -Match '^\["p\d"\]$'
            $_.BeforeImage.id | Should -Be $_.Id
            $_.BeforeImage.Contains('clean') | Should -BeFalse -Because 'the image is the document before the step'
            $_.BeforeImage.Contains('_rid') | Should -BeFalse
            $_.At | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddMinutes(-10))
        }
        @(Get-MigrationFailure -Name poison-rate -First 7).Count | Should -Be 7
        @(Get-MigrationFailure -Name poison-rate -Class Refused, Exhausted).Count | Should -Be 0
        @(Get-MigrationFailure -Name poison-rate -Class Transform -First 150).Count | Should -Be 100
        (Get-MigrationStatus -Name poison-rate).Status | Should -Be 'completedWithFailures'
        (Get-MigrationStatus -Status completedWithFailures).Name | Should -Contain 'poison-rate'
        (Get-MigrationStatus -Name poison-rate | Get-MigrationFailure -First 1).Name | Should -Be 'poison-rate'
        $tracking = Get-Tracking poison-rate
        $tracking.failed.transform | Should -Be 100
        $tracking.failureCount | Should -Be 100
        # The status table says it too.
        (Get-MigrationStatus -Name poison-rate | Format-Table | Out-String) | Should -Match 'completedWithFailures, 100 failed'
        (Get-MigrationFailure -Name poison-rate -First 1 | Format-Table | Out-String) | Should -Match 'Transform'
    }

    It 'the same run fails at -MaxFailureRate 0.005 with a clear error, its failures kept' {
        $doubled = { param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.twice) { return $null }; $doc.twice = $true; $doc }
        $result = Invoke-Backfill -Container poison -Name poison-strict -ScriptBlock $doubled -BatchSize 200 -MaxFailureRate 0.005 -ErrorVariable failure -ErrorAction SilentlyContinue
        $result.Status | Should -Be 'failed'
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'FailureRateExceeded,*'
        $failure[0].Exception.Message | Should -Match '\d+ of \d+ document\(s\) seen could not be migrated \(\d+(\.\d+)? %\), more than -MaxFailureRate 0\.005 allows'
        $failure[0].ErrorDetails.RecommendedAction | Should -Match 'Get-MigrationFailure -Name poison-strict'
        $result.Scanned | Should -BeLessThan 10000 -Because 'a share past the limit stops the run once enough documents were seen'
        $stored = @(Get-MigrationFailure -Name poison-strict)
        $stored.Count | Should -Be $result.Failed
        $stored.Count | Should -BeGreaterThan 10
    }

    It 'a fixed transform run with -RetryFailures converts every failed document and empties the store: completed' {
        $fixed = { param($doc) if ($doc.clean) { return $null }; $doc.clean = $true; $doc }
        $retry = Invoke-Backfill -Container poison -Name poison-rate -ScriptBlock $fixed -RetryFailures
        $retry.Status | Should -Be 'completed'
        $retry.Processed | Should -Be 10000 -Because 'the 100 retried documents are counted once, beside the 9,900'
        $retry.Failed | Should -Be 0
        $retry.FailedByClass.Transform | Should -Be 0
        $retry.Message | Should -Match 'Retried 100 failed'
        $script:Kit.Count($script:Database, 'poison', 'c.clean = true') | Should -Be 10000
        @(Get-MigrationFailure -Name poison-rate).Count | Should -Be 0
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'poison-rate'") | Should -Be 0 -Because 'what succeeds leaves the store'
        (Get-Tracking poison-rate).retryIntent | Should -BeNullOrEmpty
        # Nothing left: a second retry has nothing to do.
        (Invoke-Backfill -Container poison -Name poison-rate -ScriptBlock $fixed -RetryFailures).Outcome | Should -Be 'Skipped'
    }

    It 'undo covers the documents a retry changed' {
        $undone = Undo-SchemaMigration -Name poison-rate -Confirm:$false
        $undone.Status | Should -Be 'undone'
        # The 100 documents the retry changed are restored (poison-strict, which ran in between,
        # failed on them, so they are no conflicts).
        $script:Kit.Count($script:Database, 'poison', "IS_DEFINED(c.clean) AND (ENDSWITH(c.id, '07') OR c.id = 'd7')") | Should -Be 0
        # Every other document is restored too, but for those poison-strict changed since (conflicts, left alone).
        $script:Kit.Count($script:Database, 'poison', 'IS_DEFINED(c.clean)') | Should -Be $undone.Conflicts
    }

    It 'a retry needs a run that went through its steps' {
        $doubled = { param($doc) if ($doc.twice) { return $null }; $doc.twice = $true; $doc }
        $null = Invoke-Backfill -Container poison -Name poison-strict -ScriptBlock $doubled -RetryFailures -ErrorVariable refused -ErrorAction SilentlyContinue
        $refused[0].FullyQualifiedErrorId | Should -BeLike 'RetryNeedsFinishedRun,*'
        $refused[0].ErrorDetails.RecommendedAction | Should -Match 'without -RetryFailures'
    }

    It 'an item pushed past 2 MB is classed Refused, and stays Refused on a retry that still pushes it' {
        New-SeededContainer 'huge' 20 2
        $grow = { param($doc) if ($doc.grown) { return $null }; if ($doc.id -eq 'd5') { $doc.blob = 'x' * (2MB + 10) }; $doc.grown = $true; $doc }
        $result = Invoke-Backfill -Container huge -Name grow -ScriptBlock $grow -MaxFailures 1 -WarningAction SilentlyContinue
        $result.Status | Should -Be 'completedWithFailures'
        $result.Processed | Should -Be 19
        $result.FailedByClass.Refused | Should -Be 1
        $refused = Get-MigrationFailure -Name grow -Class Refused
        $refused.Id | Should -Be 'd5'
        $refused.Error | Should -Match 'HTTP 413'
        $refused.BeforeImage.Contains('blob') | Should -BeFalse -Because 'the image is the document as read, before the transform grew it'
        $again = Invoke-Backfill -Container huge -Name grow -ScriptBlock $grow -MaxFailures 1 -RetryFailures -WarningAction SilentlyContinue
        $again.Status | Should -Be 'completedWithFailures'
        $again.Failed | Should -Be 1
        (Get-MigrationFailure -Name grow).Attempts | Should -Be 2
    }

    It 'a -Force rerun starts a new set of failures' {
        $rerun = Invoke-Backfill -Container items -Name picky -ScriptBlock $script:Picky -BatchSize 50 -MaxFailures 5 -Force -WarningAction SilentlyContinue
        $rerun.Status | Should -Be 'completedWithFailures'
        $rerun.Failed | Should -Be 2 -Because 'the documents failing again are this run''s failures, counted once'
        @(Get-MigrationFailure -Name picky).Count | Should -Be 2
    }
}

Describe 'A retry killed mid-way' {
    It 'leaves exact counts, and the next retry finishes' {
        New-SeededContainer 'killed' 3000 6
        $first = Invoke-Backfill -Container killed -Name killed-retry -ScriptBlock { param($doc) if ([int]$doc.id.Substring(1) % 10 -eq 3) { throw 'later' }; if ($doc.k) { return $null }; $doc.k = 1; $doc } -MaxFailureRate 0.2 -WarningAction SilentlyContinue
        $first.Status, $first.Processed, $first.Failed | Should -Be 'completedWithFailures', 2700, 300

        # The retry, slowed down (20 ms a document) so that it is killed half-way, in small batches.
        $log = Join-Path $TestDrive 'killed.log'
        $worker = Start-Runner "Invoke-Backfill -Container killed -Name killed-retry -ScriptBlock { param(`$doc) Start-Sleep -Milliseconds 20; if (`$doc.k) { return `$null }; `$doc.k = 1; `$doc } -RetryFailures -BatchSize 10 -LeaseDuration 00:00:05" $log
        Wait-Until { (Get-Tracking killed-retry).processed -ge 2760 } 120 | Should -BeTrue -Because (Get-Content $log -Raw -ErrorAction SilentlyContinue)
        Wait-Until { Test-Path "$log.pid" } 10 | Should -BeTrue
        Stop-Runner $log
        $worker.WaitForExit(30000) | Should -BeTrue
        $killed = Get-Tracking killed-retry
        $killed.status | Should -Be 'running' -Because 'a killed retry leaves its lease to expire'
        $killed.processed | Should -BeLessThan 3000 -Because 'it was killed before the end'
        ($killed.processed + $killed.failureCount) | Should -BeLessOrEqual 3000

        # The next retry once the killed one's lease ran out.
        Wait-Until { -not (Get-MigrationStatus -Name killed-retry).Owner } 30 | Should -BeTrue
        $done = Invoke-Backfill -Container killed -Name killed-retry -ScriptBlock { param($doc) if ($doc.k) { return $null }; $doc.k = 1; $doc } -RetryFailures
        $done.Status | Should -Be 'completed'
        $done.Processed | Should -Be 3000 -Because 'the killed batch is counted once, by the next retry'
        $done.Failed | Should -Be 0
        $script:Kit.Count($script:Database, 'killed', 'c.k = 1') | Should -Be 3000
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'killed-retry'") | Should -Be 0
    }
}

Describe 'A poison document under -Distributed -Follow' {
    It 'is set aside, and its feed range keeps converting what the application writes' {
        New-SeededContainer 'live' 200 4
        $log = Join-Path $TestDrive 'live.log'
        $worker = Start-Runner "Set-RunnerResult (Start-SchemaMigration -Name live-poison -Container live -Operation @{ Transform = { param(`$doc) if (`$doc.poison) { throw 'poison' }; if (`$doc.lv) { return `$null }; `$doc.lv = 1; `$doc } } -Distributed -Follow -MaxFailures 10 -LeaseDuration 00:00:06 -WarningAction SilentlyContinue | Select-Object Name, Status, Processed, Failed)" $log
        try {
            Wait-Until { (Get-MigrationStatus -Name live-poison).Phase -eq 'following' } 120 | Should -BeTrue -Because (Get-Content $log -Raw -ErrorAction SilentlyContinue)
            # The application writes a document the transform cannot handle, in partition p1, then
            # more documents in the old shape in every partition, p1 included.
            $script:Kit.Upsert($script:Database, 'live', '{"id":"bad1","pk":"p1","poison":true}')
            Wait-Until { @(Get-MigrationFailure -Name live-poison).Count -eq 1 } 30 | Should -BeTrue
            $script:Kit.Seed($script:Database, 'live', 40, 4, 200, $null)
            Wait-Until { $script:Kit.Count($script:Database, 'live', 'NOT IS_DEFINED(c.lv) AND NOT IS_DEFINED(c.poison)') -eq 0 } 30 | Should -BeTrue -Because 'the poison document does not hold its range'
            $failure = Get-MigrationFailure -Name live-poison
            $failure.Id | Should -Be 'bad1'
            $failure.Class | Should -Be 'Transform'
            $failure.BeforeImage.poison | Should -BeTrue
            (Get-MigrationStatus -Name live-poison).Failed | Should -Be 1
        }
        finally {
            Stop-SchemaMigration -Name live-poison -ErrorAction SilentlyContinue
            $worker.WaitForExit(60000) | Should -BeTrue
        }
        $result = Get-RunnerResult $log
        $result.Status | Should -Be 'completedWithFailures'
        $result.Processed | Should -Be 240
        $result.Failed | Should -Be 1
    }
}

Describe 'Time slices' {
    It '-MaxDuration stops at a page boundary, resumably, and the next slice finishes' {
        # Enough documents that one at a time they cannot all be done within the slice, however
        # fast the machine (400 once were).
        New-SeededContainer 'slices' 3000 6
        $slice = Start-SchemaMigration -Name sliced -Container slices -Operation @{ AddField = 's'; Value = 1 } -BatchSize 10 -MaxDegreeOfParallelism 1 -MaxDuration '00:00:00.3'
        $slice.Status | Should -Be 'cancelled'
        $slice.StopReason | Should -Be 'MaxDuration'
        $slice.Processed | Should -BeGreaterThan 0
        $slice.Processed | Should -BeLessThan 3000
        $slice.Processed % 10 | Should -Be 0 -Because 'a slice ends at a page boundary'
        $rest = Start-SchemaMigration -Name sliced -Container slices -Operation @{ AddField = 's'; Value = 1 }
        $rest.Status | Should -Be 'completed'
        $rest.Processed | Should -Be 3000
    }
}

Describe 'Ctrl+C' {
    It 'stopping the pipeline leaves a cancelled migration that resumes' {
        $script:Kit.Seed($script:Database, 'items', 1600, 4, 400, $null)
        $ps = Start-ConnectedPipeline "Start-SchemaMigration -Name interrupted -Container items -Operation @{ AddField = 'i'; Value = 1 } -BatchSize 10 -MaxDegreeOfParallelism 1"
        Wait-Until { Get-MigrationStatus -Name interrupted | Where-Object Processed -GT 0 } 60 | Should -BeTrue
        $ps.Stop()
        $ps.Dispose()

        $stopped = Get-MigrationStatus -Name interrupted
        $stopped.Status | Should -Be 'cancelled'
        $stopped.StopReason | Should -Be 'Interrupted'
        $stopped.Owner | Should -BeNullOrEmpty -Because 'the lease is released, so the next start need not wait'
        $stopped.Processed | Should -Be $script:Kit.Count($script:Database, 'items', 'c.i = 1') -Because 'the pages writing at Ctrl+C finish and are counted'
        $resumed = Start-SchemaMigration -Name interrupted -Container items -Operation @{ AddField = 'i'; Value = 1 }
        $resumed.Status | Should -Be 'completed'
        $resumed.Processed | Should -Be 2000 -Because 'every change is counted once, across the interrupted run and the resumed one'
        $script:Kit.Count($script:Database, 'items', 'c.i = 1') | Should -Be 2000
    }

    It 'an interrupted backfill of small pages counts exactly what it changed, and the next run the rest (<Stop> documents in)' -ForEach @(
        @{ Stop = 90 }, @{ Stop = 190 }, @{ Stop = 470 }
    ) {
        $container = "ctrlc$Stop"
        New-SeededContainer $container 1000 7
        $ps = Start-ConnectedPipeline "Invoke-Backfill -Container '$container' -Name '$container-bf' -Filter 'NOT IS_DEFINED(c.b)' -Set @{ b = 1 } -BatchSize 10"
        Wait-Until { Get-MigrationStatus -Name "$container-bf" | Where-Object Processed -GE $Stop } 60 -Every 10 | Should -BeTrue
        $ps.Stop()
        $ps.Dispose()

        $stopped = Get-MigrationStatus -Name "$container-bf"
        $stopped.Status | Should -Be 'cancelled'
        $stopped.Processed | Should -Be $script:Kit.Count($script:Database, $container, 'c.b = 1')
        $resumed = Invoke-Backfill -Container $container -Name "$container-bf" -Filter 'NOT IS_DEFINED(c.b)' -Set @{ b = 1 } -BatchSize 10
        $resumed.Status | Should -Be 'completed'
        $resumed.Processed | Should -Be 1000
        $script:Kit.Count($script:Database, $container, 'c.b = 1') | Should -Be 1000
    }
}

Describe 'A distributed run and its thresholds' {
    BeforeAll {
        # 2,000 documents, 1 % of them (d7, d107, …, d1907) poison for the transform.
        New-SeededContainer 'dpoison' 2000 8
    }

    It 'completes with failures below -MaxFailureRate, shown by class in its status and in Get-MigrationStatus' {
        $result = Invoke-Backfill -Container dpoison -Name dist-rate -Distributed -LeaseDuration 00:00:06 -MaxFailureRate 0.02 -WarningVariable warned -WarningAction SilentlyContinue `
            -ScriptBlock { param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.dr) { return $null }; $doc.dr = 1; $doc }
        $result.Status | Should -Be 'completedWithFailures'
        $result.Processed | Should -Be 1980
        $result.Failed | Should -Be 20
        $result.FailedByClass.Transform | Should -Be 20
        $result.FailedByClass.Refused + $result.FailedByClass.Exhausted | Should -Be 0
        "$warned" | Should -Match "Get-MigrationFailure -Name 'dist-rate'"
        $status = Get-MigrationStatus -Name dist-rate
        $status.Status | Should -Be 'completedWithFailures'
        $status.Failed | Should -Be 20
        $status.FailedByClass.Transform | Should -Be 20
        @(Get-MigrationFailure -Name dist-rate -Class Transform).Count | Should -Be 20
        $script:Kit.Count($script:Database, 'dpoison', 'c.dr = 1') | Should -Be 1980
        # Its own writes came back through the change feed, and were counted apart from what it read.
        $tracking = Get-Tracking dist-rate
        $tracking.echoes | Should -BeGreaterThan 0
        $tracking.echoes | Should -BeLessOrEqual 1980
        ($tracking.scanned - $tracking.echoes) | Should -BeGreaterOrEqual 2000
    }

    It 'judges -MaxFailureRate by the documents it read, not by its own writes coming back' {
        # 1 % fail, more than 0.8 %; counted against deliveries, which hold the run's own writes
        # as well, the share would read about 0.5 % and the run would complete.
        $null = Invoke-Backfill -Container dpoison -Name dist-echo -Distributed -LeaseDuration 00:00:06 -MaxFailureRate 0.008 -ErrorVariable failed -ErrorAction SilentlyContinue `
            -ScriptBlock { param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.de) { return $null }; $doc.de = 1; $doc }
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'FailureRateExceeded,*'
        $status = Get-MigrationStatus -Name dist-echo
        $status.Status | Should -Be 'failed'
        $status.Error | Should -Match 'more than -MaxFailureRate 0\.008 allows'
    }

    It 'fails past -MaxFailureRate on every worker with the error a single run fails with, its failures kept' {
        $workers = foreach ($n in 1, 2) {
            $log = Join-Path $TestDrive "dist-strict-$n.log"
            $script = @'
$s = Invoke-Backfill -Container dpoison -Name dist-strict -Distributed -LeaseDuration 00:00:06 -MaxFailureRate 0.005 -ErrorVariable ev -ErrorAction SilentlyContinue -ScriptBlock { param($doc) Start-Sleep -Milliseconds 2; if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.ds) { return $null }; $doc.ds = 1; $doc }
[pscustomobject]@{ Status = $s.Status; Failed = $s.Failed; Transform = $s.FailedByClass.Transform; ErrorId = $ev[0].FullyQualifiedErrorId; Category = "$($ev[0].CategoryInfo.Category)"; Target = "$($ev[0].TargetObject)"; Action = $ev[0].ErrorDetails.RecommendedAction; Message = $ev[0].Exception.Message } | ConvertTo-Json | Set-Content "$log.json"
'@
            [pscustomobject]@{ Log = $log; Process = (Start-Runner $script $log) }
        }
        foreach ($worker in $workers) {
            $worker.Process.WaitForExit(240000) | Should -BeTrue
            Test-Path "$($worker.Log).json" | Should -BeTrue -Because (Get-Content $worker.Log -Raw -ErrorAction SilentlyContinue)
            $result = Get-Content "$($worker.Log).json" -Raw | ConvertFrom-Json
            $result.Status | Should -Be 'failed'
            $result.ErrorId | Should -BeLike 'FailureRateExceeded,*'
            $result.Category | Should -Be 'WriteError'
            $result.Target | Should -Be 'dist-strict'
            $result.Message | Should -Match "Migration 'dist-strict': \d+ of \d+ document\(s\) seen could not be migrated \(\d+(\.\d+)? %\), more than -MaxFailureRate 0\.005 allows"
            $result.Action | Should -Match 'Get-MigrationFailure -Name dist-strict'
            $result.Failed | Should -BeGreaterThan 10
            $result.Transform | Should -Be $result.Failed
        }
        $status = Get-MigrationStatus -Name dist-strict
        $status.Status | Should -Be 'failed'
        $status.Error | Should -Match 'more than -MaxFailureRate 0\.005 allows'
        (Get-Tracking dist-strict).errorId | Should -Be 'FailureRateExceeded'
        @(Get-MigrationFailure -Name dist-strict).Count | Should -Be $status.Failed
        $status.FailedByClass.Transform | Should -Be $status.Failed
    }

    It 'the runbook''s JSON shows a distributed run''s failures by class, and its exit codes follow them' {
        $folder = Join-Path $TestDrive 'dist-runbook'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder '0001_mark.psd1') "@{ Name = 'dist-runbook'; Container = 'dpoison'; Operations = @( @{ Transform = 'mark.ps1' } ) }"
        Set-Content (Join-Path $folder 'mark.ps1') 'param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 7) { throw "poison $($doc.id)" }; if ($doc.rb) { return $null }; $doc.rb = 1; $doc'
        $runbook = Join-Path $script:Root 'examples/runbook/Invoke-MigrationRunbook.ps1'
        $env:COSMOS_CONNECTION_STRING = "AccountEndpoint=$($script:Endpoint);AccountKey=$($script:Key);DisableServerCertificateValidation=True"
        try {
            $lines = @(& dotnet pwsh -NoProfile -NonInteractive -File $runbook -MigrationsPath $folder -Database $script:Database -TimeSlice 00:10:00 -MaxFailureRate 0.05 -Distributed -ModulePath $script:ModulePath 2>&1 | ForEach-Object { "$_" })
            $exitCode = $LASTEXITCODE
        }
        finally { Remove-Item env:COSMOS_CONNECTION_STRING }
        $exitCode | Should -Be 2 -Because ($lines -join "`n")
        $line = $lines | Where-Object { $_ -like '{"name":"dist-runbook"*' } | ConvertFrom-Json
        $line.status | Should -Be 'completedWithFailures'
        $line.processed | Should -Be 1980
        $line.failed | Should -Be 20
        $line.failedByClass.transform | Should -Be 20
        $line.failedByClass.refused + $line.failedByClass.exhausted | Should -Be 0
        ($lines | Where-Object { $_ -like '{"summary"*' } | ConvertFrom-Json).completedWithFailures | Should -Be 1
    }
}

Describe 'A document whose writes keep failing transiently' {
    AfterEach { if ($script:IsHarness) { Set-Faults @{} } }

    It 'is set aside as Exhausted once its retries are spent, with its attempts and error, and a retry converts it' -Skip:(-not $script:IsHarness) {
        New-SeededContainer 'exh' 40 4
        # Every write of d5 (a patch, or a replace) is answered 503: the service unavailable for that document only.
        Set-Faults @{ rate503 = 1; pathPattern = '/colls/exh/docs/d5$'; methods = @('PATCH', 'PUT') }
        $result = Invoke-Backfill -Container exh -Name exhausted -Set @{ e = 1 } -MaxFailures 1 -WarningAction SilentlyContinue
        $result.Status | Should -Be 'completedWithFailures'
        $result.Processed | Should -Be 39
        $result.Failed | Should -Be 1
        $result.FailedByClass.Exhausted | Should -Be 1
        $result.FailedByClass.Transform + $result.FailedByClass.Refused | Should -Be 0
        $entry = Get-MigrationFailure -Name exhausted
        $entry.Id | Should -Be 'd5'
        $entry.Class | Should -Be 'Exhausted'
        $entry.Attempts | Should -Be 12 -Because 'the sender tries a transient failure 12 times before it gives up'
        $entry.Error | Should -Match 'still failed after 12 attempts'
        $entry.BeforeImage.id | Should -Be 'd5'
        $entry.BeforeImage.Contains('e') | Should -BeFalse

        Set-Faults @{}
        $retry = Invoke-Backfill -Container exh -Name exhausted -Set @{ e = 1 } -RetryFailures
        $retry.Status | Should -Be 'completed'
        $retry.Processed | Should -Be 40
        $retry.Failed | Should -Be 0
        $script:Kit.Count($script:Database, 'exh', 'c.e = 1') | Should -Be 40
        @(Get-MigrationFailure -Name exhausted).Count | Should -Be 0
    }
}

Describe 'Failure entries of a migration whose state is reset or undone' {
    It 'Reset-SchemaMigration removes them, and the next run records its own' {
        $null = Invoke-Backfill -Container items -Name picky-reset -ScriptBlock $script:Picky -BatchSize 50 -ErrorAction SilentlyContinue
        $failed = Get-MigrationStatus -Name picky-reset
        $failed.Status | Should -Be 'failed'
        $failed.Failed | Should -BeGreaterThan 0
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'picky-reset'") | Should -Be $failed.Failed
        Reset-SchemaMigration -Name picky-reset -Confirm:$false -Verbose 4>&1 | Out-String | Should -Match "$($failed.Failed) failure store entr\(ies\)"
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'picky-reset'") | Should -Be 0
        $again = Invoke-Backfill -Container items -Name picky-reset -ScriptBlock $script:Picky -BatchSize 50 -MaxFailures 5 -WarningAction SilentlyContinue
        $again.Status | Should -Be 'completedWithFailures'
        $again.Failed | Should -Be 2
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'picky-reset'") | Should -Be 2
    }

    It 'an undone migration leaves none' {
        (Get-MigrationStatus -Name grow).Failed | Should -Be 1
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'grow'") | Should -Be 1
        (Undo-SchemaMigration -Name grow -Confirm:$false).Status | Should -Be 'undone'
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'grow'") | Should -Be 0
        $script:Kit.Count($script:Database, 'huge', 'IS_DEFINED(c.grown)') | Should -Be 0
    }
}

Describe 'A move whose copy had failed documents' {
    BeforeAll {
        # 300 documents that move as they are; two whose level the move's map cannot convert
        # (Transform), and one the move's added field pushes past 2 MB (Refused by the target).
        New-SeededContainer 'mvsrc' 300 10
        $script:Kit.Upsert($script:Database, 'mvsrc', '{"id":"odd1","pk":"p1","name":"Odd 1","level":"odd"}')
        $script:Kit.Upsert($script:Database, 'mvsrc', '{"id":"odd2","pk":"p2","name":"Odd 2","level":"weird"}')
        $script:Kit.Upsert($script:Database, 'mvsrc', '{"id":"fine","pk":"p3","name":"Fine","level":"low"}')
        $script:Kit.Upsert($script:Database, 'mvsrc', (@{ id = 'big'; pk = 'p4'; name = 'Big'; blob = 'x' * (2MB - 3000) } | ConvertTo-Json -Compress))
        $script:MoveOperations = @(@{ ConvertField = 'level'; To = 'levelNo'; Map = @{ low = 1; high = 3 } }, @{ AddField = 'movedFrom'; Value = ('m' * 4000) })
    }

    It 'copies the rest, counts the failed documents by class, and keeps them in the store' {
        $status = Start-ContainerMove -Name mvfail -Container mvsrc -Target mvtgt -PartitionKey /name -Operation $script:MoveOperations -MaxFailures 5 -Confirm:$false -WarningVariable warned -WarningAction SilentlyContinue
        $status.Status | Should -Be 'copied'
        $status.Failed | Should -Be 3
        $status.FailedByClass.Transform | Should -Be 2
        $status.FailedByClass.Refused | Should -Be 1
        $status.Message | Should -Match 'but for 3 document\(s\) that could not be copied'
        "$warned" | Should -Match "Get-MigrationFailure -Name 'mvfail'"
        ($status | Format-Table | Out-String) | Should -Match 'copied \(copied\), 3 failed'
        $script:Kit.Count($script:Database, 'mvtgt') | Should -Be 301
        $failures = @(Get-MigrationFailure -Name mvfail)
        @($failures.Id | Sort-Object) | Should -Be @('big', 'odd1', 'odd2')
        ($failures | Where-Object Id -EQ 'odd1').Class | Should -Be 'Transform'
        ($failures | Where-Object Id -EQ 'odd1').Error | Should -Match 'cannot be converted'
        ($failures | Where-Object Id -EQ 'odd1').BeforeImage.level | Should -Be 'odd'
        ($failures | Where-Object Id -EQ 'big').Class | Should -Be 'Refused'
        ($failures | Where-Object Id -EQ 'big').Error | Should -Match 'HTTP 413'
        (Get-MigrationStatus -Name mvfail).FailedByClass.Refused | Should -Be 1
    }

    It 'the cut-over copies them again, and refuses to complete while any is missing from the target' {
        $failed = $null
        $status = Complete-ContainerMove -Name mvfail -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'MoveHasFailedDocuments,CosmosMigrations.PowerShell.Commands.CompleteContainerMoveCommand'
        $failed[0].CategoryInfo.Category | Should -Be 'InvalidResult'
        $failed[0].TargetObject | Should -Be 'mvfail'
        $failed[0].Exception.Message | Should -Match "3 document\(s\) of 'mvsrc' could not be copied to 'mvtgt' \(Transform 2, Refused 1, Exhausted 0\)"
        $failed[0].ErrorDetails.RecommendedAction | Should -Match 'Get-MigrationFailure -Name mvfail'
        $status.Status | Should -Be 'copied'
        $status.Failed | Should -Be 3
        (Get-MigrationStatus -Name mvfail).Status | Should -Be 'copied'
        @(Get-MigrationFailure -Name mvfail | ForEach-Object Attempts | Sort-Object -Unique) | Should -Be @(2) -Because 'each was tried again'
    }

    It 'Undo-SchemaMigration of a move removes its failure entries with it' {
        $status = Start-ContainerMove -Name mvundo -Container mvsrc -Target mvtgt2 -PartitionKey /name -Operation $script:MoveOperations -MaxFailures 5 -Confirm:$false -WarningAction SilentlyContinue
        $status.Failed | Should -Be 3
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'mvundo'") | Should -Be 3
        $undone = Undo-SchemaMigration -Name mvundo -Confirm:$false
        $undone.Message | Should -Match '3 failure store entr\(ies\)'
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'mvundo'") | Should -Be 0
    }

    It 'once the documents are fixed in the source, the cut-over copies them and completes: the store empty, the target equal' {
        # The application fixes one, deletes another, and shrinks the third.
        $script:Kit.Upsert($script:Database, 'mvsrc', '{"id":"odd1","pk":"p1","name":"Odd 1","level":"high"}')
        $script:Kit.Delete($script:Database, 'mvsrc', 'odd2', 'p2')
        $script:Kit.Upsert($script:Database, 'mvsrc', '{"id":"big","pk":"p4","name":"Big","blob":"small now"}')
        $done = Complete-ContainerMove -Name mvfail -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Failed | Should -Be 0
        $done.FailedByClass.Transform + $done.FailedByClass.Refused + $done.FailedByClass.Exhausted | Should -Be 0
        @(Get-MigrationFailure -Name mvfail).Count | Should -Be 0
        $script:Kit.Count($script:Database, 'migrations-failures', "c.migration = 'mvfail'") | Should -Be 0
        $script:Kit.Count($script:Database, 'mvtgt') | Should -Be 303
        $script:Kit.Count($script:Database, 'mvtgt', "c.id = 'odd1' AND c.levelNo = 3") | Should -Be 1
        $script:Kit.Count($script:Database, 'mvtgt', "c.id = 'big' AND c.blob = 'small now'") | Should -Be 1
    }
}
