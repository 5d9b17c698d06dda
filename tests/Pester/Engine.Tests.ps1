# The migration engine end to end, through the module, against a real Cosmos DB protocol server.
# -Skip is decided at discovery: harness-only tests (fault injection) need to know it then.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
}

AfterAll { Remove-TestDatabase }

Describe 'A tracked backfill' {
    It 'changes each of 5,000 documents in 40 partition keys exactly once and records completion' {
        New-SeededContainer 'users' 5000 40
        $before = if ($script:IsHarness) { Get-HarnessStats }

        $status = Start-SchemaMigration -Name 'add-avatar' -Container users -Operation @{ AddField = 'avatarUrl'; Value = 'none' }

        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 5000
        $status.Error | Should -BeNullOrEmpty
        $script:Kit.Count($script:Database, 'users', "c.avatarUrl = 'none'") | Should -Be 5000
        if ($script:IsHarness) {
            $after = Get-HarnessStats
            ((Get-MethodCount $after 'PATCH 200') - (Get-MethodCount $before 'PATCH 200')) | Should -Be 5000 -Because 'every document is written exactly once'
        }
        $tracking = $script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = 'add-avatar'") | ConvertFrom-Json
        $tracking.status | Should -Be 'completed'
        $tracking.processed | Should -Be 5000
        $tracking.startedAt | Should -BeOfType [long]
        $tracking.completedAt | Should -BeOfType [long]
        $tracking.completedAt | Should -BeGreaterOrEqual $tracking.startedAt
        $tracking.PSObject.Properties.Name | Should -Not -Contain 'error'
        $tracking.PSObject.Properties.Name | Should -Not -Contain 'lease'
    }

    It 'skips a completed migration, and -Force runs it again without changing anything twice' {
        $again = Start-SchemaMigration -Name 'add-avatar' -Container users -Operation @{ AddField = 'avatarUrl'; Value = 'none' } -Verbose 4>&1
        ($again | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'Already completed'
        ($again | Where-Object { $_.PSTypeNames -contains 'CosmosMigrations.MigrationStatus' }).Outcome | Should -Be 'Skipped'
        (Start-SchemaMigration -Name 'add-avatar' -Container users -Operation @{ AddField = 'avatarUrl'; Value = 'none' } -Force).Processed | Should -Be 0
    }

    It 'runs Invoke-Backfill with -Set, -Unset, -Rename and -ScriptBlock' {
        New-SeededContainer 'shapes' 200 4 '{"legacy":1,"userName":"u"}'
        (Invoke-Backfill -Container shapes -Name shapes-1 -Rename @{ userName = 'displayName' } -Unset legacy -Set @{ 'settings.theme' = 'dark' }).Processed | Should -Be 200
        (Invoke-Backfill -Container shapes -Name shapes-2 -Filter 'IS_DEFINED(c.displayName)' -ScriptBlock { param($doc) $doc.upper = $doc.name.ToUpperInvariant(); $doc }).Processed | Should -Be 200
        $doc = $script:Kit.ReadAllJson($script:Database, 'shapes', "SELECT * FROM c WHERE c.id = 'd7'") | ConvertFrom-Json
        $doc.displayName | Should -Be 'u'
        $doc.PSObject.Properties.Name | Should -Not -Contain 'userName'
        $doc.PSObject.Properties.Name | Should -Not -Contain 'legacy'
        $doc.settings.theme | Should -Be 'dark'
        $doc.upper | Should -Be 'USER 7'
        # Nothing PowerShell adds reaches the stored document.
        $doc.PSObject.Properties.Name | Should -Not -Contain 'PSComputerName'
        @($doc.PSObject.Properties.Name | Where-Object { $_ -notlike '_*' }) | Sort-Object | Should -Be @('displayName', 'email', 'id', 'name', 'pk', 'settings', 'upper')
    }
}

Describe 'Dry runs' {
    It '-WhatIf leaves the container and the tracking container byte-for-byte as they were' {
        New-SeededContainer 'dry' 150 5
        $containerBefore = $script:Kit.ReadAllJson($script:Database, 'dry', 'SELECT * FROM c')
        $trackingBefore = $script:Kit.ReadAllJson($script:Database, 'migrations', 'SELECT * FROM c')

        $preview = Start-SchemaMigration -Name 'dry-add' -Container dry -Operation @{ AddField = 'x'; Value = 1 }, @{ RemoveField = 'email' } -WhatIf
        $backfill = Invoke-Backfill -Container dry -Name 'dry-bf' -ScriptBlock { param($doc) $doc.y = 2; $doc } -WhatIf

        $preview.WouldChange | Should -Be 150
        $preview.Samples.Count | Should -Be 3
        ($preview.Samples[0].After | ConvertFrom-Json).x | Should -Be 1
        ($preview.Samples[0].After | ConvertFrom-Json).PSObject.Properties.Name | Should -Not -Contain 'email'
        $backfill.WouldChange | Should -Be 150
        $script:Kit.ReadAllJson($script:Database, 'dry', 'SELECT * FROM c') | Should -Be $containerBefore
        $script:Kit.ReadAllJson($script:Database, 'migrations', 'SELECT * FROM c') | Should -Be $trackingBefore
    }
}

Describe 'Stopping and resuming' {
    It 'Stop-SchemaMigration ends a run as cancelled; the next start completes it' {
        New-SeededContainer 'stoppable' 3000 10
        $child = Start-ConnectedJob "Start-SchemaMigration -Name 'stoppable-add' -Container stoppable -Operation @{ AddField = 'z'; Value = 1 } -BatchSize 20 -MaxDegreeOfParallelism 2"
        Wait-Until { Get-MigrationStatus -Name 'stoppable-add' | Where-Object { $_.Status -eq 'running' -and $_.Processed -gt 0 } } 60 | Should -BeTrue

        Stop-SchemaMigration -Name 'stoppable-add' -Confirm:$false
        $stopped = $child | Wait-Job -Timeout 60 | Receive-Job
        $stopped.Status | Should -Be 'cancelled'
        $stopped.StopReason | Should -Be 'StopRequested'
        $stopped.Processed | Should -BeLessThan 3000

        $resumed = Start-SchemaMigration -Name 'stoppable-add' -Container stoppable -Operation @{ AddField = 'z'; Value = 1 }
        $resumed.Status | Should -Be 'completed'
        $resumed.Outcome | Should -Be 'Resumed'
        $resumed.Processed | Should -Be 3000
        $script:Kit.Count($script:Database, 'stoppable', 'c.z = 1') | Should -Be 3000
    }

    It 'a runner killed with SIGKILL is refused while its lease lives, then resumed from its checkpoint' {
        New-SeededContainer 'crashy' 2000 8
        $before = if ($script:IsHarness) { Get-HarnessStats }
        $log = Join-Path $TestDrive 'runner.log'
        $process = Start-Runner "Start-SchemaMigration -Name crashy-transform -Container crashy -BatchSize 20 -MaxDegreeOfParallelism 2 -LeaseDuration 00:00:06 -Operation @{ Transform = { param(`$doc) if (`$doc.migrated) { return `$null }; `$doc.migrated = `$true; `$doc } }" $log
        Wait-Until { Get-MigrationStatus -Name 'crashy-transform' | Where-Object { $_.Status -eq 'running' -and $_.Processed -ge 200 } } 60 | Should -BeTrue -Because (Get-Content $log -Raw -ErrorAction SilentlyContinue)
        $process.HasExited | Should -BeFalse -Because "the runner should still be running (its output: $(Get-Content $log -Raw -ErrorAction SilentlyContinue))"
        Stop-Runner $log
        $process.Kill($true)
        $process.WaitForExit(10000) | Should -BeTrue
        $atKill = Get-MigrationStatus -Name 'crashy-transform'
        $atKill.Status | Should -Be 'running'
        $atKill.Processed | Should -BeLessThan 2000

        $refused = { Start-SchemaMigration -Name crashy-transform -Container crashy -Operation @{ Transform = { param($doc) if ($doc.migrated) { return $null }; $doc.migrated = $true; $doc } } -ErrorAction Stop } |
            Should -Throw -PassThru
        $refused.FullyQualifiedErrorId | Should -BeLike 'MigrationAlreadyRunning,*'
        $refused.Exception.Message | Should -Match 'already running'

        # Refused until the killed runner's lease runs out, then resumed.
        Wait-Until { -not (Get-MigrationStatus -Name crashy-transform).Owner } 30 | Should -BeTrue
        $resumed = Start-SchemaMigration -Name crashy-transform -Container crashy -Operation @{ Transform = { param($doc) if ($doc.migrated) { return $null }; $doc.migrated = $true; $doc } }
        $resumed.Status | Should -Be 'completed'
        $resumed.Outcome | Should -Be 'Resumed'
        # The killed run's unfinished pages left their intents: the next run counts what they
        # changed before it goes on, so the total is exact.
        $resumed.Processed | Should -Be 2000 -Because 'the documents the killed run changed in its uncounted pages were counted from their intents'
        $resumed.Processed | Should -BeLessOrEqual 2000
        $resumed.Processed | Should -BeGreaterOrEqual (2000 - 2 * 20) -Because 'at most two pages (BatchSize 20: one checkpointing, one writing; the ranges are scanned one at a time at -MaxDegreeOfParallelism 2) are in flight at a kill'
        $resumed.Scanned | Should -Be 2000 -Because 'the second run read on from the checkpoint, not from the beginning'
        $script:Kit.Count($script:Database, 'crashy', 'c.migrated = true') | Should -Be 2000
        if ($script:IsHarness) {
            $after = Get-HarnessStats
            ((Get-MethodCount $after 'PUT 200' 'crashy') - (Get-MethodCount $before 'PUT 200' 'crashy')) | Should -Be 2000 -Because 'across the killed run and the resumed one, each document is written exactly once'
        }
    }
}

Describe 'Faults' -Skip:(-not $script:IsHarness) {
    It 'completes with nothing lost while the server answers a share of requests with 429 and 503' {
        New-SeededContainer 'faulty' 1500 12
        Set-Faults @{ rate429 = 0.2; rate503 = 0.05; retryAfterMs = 2; seed = 7; pathPattern = '/docs' }
        try {
            $status = Invoke-Backfill -Container faulty -Name faulty-add -Filter 'NOT IS_DEFINED(c.f)' -Set @{ f = 1 }
        }
        finally {
            $stats = Get-HarnessStats
            Set-Faults @{}
        }
        $stats.injected.'429' | Should -BeGreaterThan 0
        $stats.injected.'503' | Should -BeGreaterThan 0
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 1500
        $script:Kit.Count($script:Database, 'faulty', 'c.f = 1') | Should -Be 1500
    }

    It 'backs off from sustained throttling, reports it, and completes' {
        New-SeededContainer 'throttled' 1000 10
        # 30 % of the writes throttled: past the SDK's own two retries, about 3 % reach the engine.
        Set-Faults @{ rate429 = 0.3; retryAfterMs = 5; seed = 11; methods = @('PATCH') }
        try {
            $status = Start-SchemaMigration -Name throttled-add -Container throttled -Operation @{ AddField = 'g'; Value = 1 } -MaxDegreeOfParallelism 32 -Verbose 4>&1 |
                ForEach-Object { if ($_ -is [System.Management.Automation.VerboseRecord]) { $script:verbose += @($_.Message) } else { $_ } }
        }
        finally { Set-Faults @{} }
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 1000
        $status.Throttled | Should -BeGreaterThan 0
        $script:verbose | Where-Object { $_ -match '^This run: \d+ request\(s\) throttled \(429\).*concurrency went down to (\d+) of 32' } | Should -Not -BeNullOrEmpty
        [int]$Matches[1] | Should -BeLessThan 32
        $script:Kit.Count($script:Database, 'throttled', 'c.g = 1') | Should -Be 1000
    }

    It 'lists, checks, stops and resets while reads and writes are throttled' {
        # Half of all requests throttled: past the SDK's two retries, one in eight reaches the
        # module, which must retry it rather than fail the command.
        (Start-SchemaMigration -Name throttled-reset -Container users -Operation @{ AddField = 'tr'; Value = 1 } -BatchSize 10 -MaxBatches 1).Status | Should -Be 'cancelled'
        Set-Faults @{ rate429 = 0.5; retryAfterMs = 2; seed = 5; methods = @('POST', 'GET', 'PUT', 'DELETE') }
        try {
            $statuses = 1..8 | ForEach-Object { Get-MigrationStatus -ErrorAction Stop }
            $rules = 1..8 | ForEach-Object { Test-SchemaConformance -Container users -Require @{ avatarUrl = 'string' } -ErrorAction Stop }
            # Read under throttling, the state is judged: a completed migration has nothing to stop.
            $notRunning = { Stop-SchemaMigration -Name add-avatar -ErrorAction Stop } | Should -Throw -PassThru
            Reset-SchemaMigration -Name throttled-reset -Confirm:$false -ErrorAction Stop
            $stats = Get-HarnessStats
        }
        finally { Set-Faults @{} }
        $stats.injected.'429' | Should -BeGreaterThan 20
        @($statuses | Where-Object Name -EQ 'add-avatar').Count | Should -Be 8
        @($rules | Where-Object NonConforming -EQ 0).Count | Should -Be 8
        Get-MigrationStatus -Name throttled-reset | Should -BeNullOrEmpty -Because 'the reset went through'
        $notRunning.FullyQualifiedErrorId | Should -BeLike 'MigrationNotRunning,*'
    }

    It 'holds -MaxRUPerSecond, measured from each response''s charge' {
        New-SeededContainer 'budget' 300 6
        # Every answer costs 5 RU: about 1,600 RU in all, at 600 RU/s at most.
        Set-Faults @{ requestCharge = 5 }
        try {
            $status = Start-SchemaMigration -Name budget-add -Container budget -Operation @{ AddField = 'h'; Value = 1 } -MaxRUPerSecond 600
        }
        finally { Set-Faults @{} }
        $status.Status | Should -Be 'completed'
        $status.RequestCharge | Should -BeGreaterThan 1500
        ($status.RequestCharge / $status.Duration.TotalSeconds) | Should -BeLessOrEqual 660 -Because 'the budget holds (10 % for the first fifth of a second spent at once)'
    }
}

Describe 'Concurrency and cost' {
    It 'says what concurrency it settled on and why, and what the run cost per document' {
        $verbose = @()
        $status = Start-SchemaMigration -Name cost-add -Container users -Operation @{ AddField = 'cost'; Value = 1 } -Verbose 4>&1 |
            ForEach-Object { if ($_ -is [System.Management.Automation.VerboseRecord]) { $verbose += $_.Message } else { $_ } }
        $status.Status | Should -Be 'completed'
        $status.Concurrency | Should -BeGreaterThan 0
        $status.Concurrency | Should -BeLessOrEqual 64 -Because '-MaxDegreeOfParallelism (default 64) is the cap'
        $status.ConcurrencyReason | Should -Not -BeNullOrEmpty
        $status.RequestChargePerDocument | Should -BeGreaterThan 0
        $status.DocumentsPerSecond | Should -BeGreaterThan 0
        # Every change of the limit is explained, in requests per second.
        $verbose | Where-Object { $_ -match '^Concurrency \d+: .*requests/s' } | Should -Not -BeNullOrEmpty

        $read = Get-MigrationStatus -Name cost-add
        $read.RequestChargePerDocument | Should -Be $status.RequestChargePerDocument
        $read.DocumentsPerSecond | Should -BeGreaterThan 0
        $read.Concurrency | Should -BeGreaterThan 0 -Because 'the tracking document keeps the last run''s concurrency'
        $read.ConcurrencyReason | Should -Not -BeNullOrEmpty
    }

    It 'never goes past -MaxDegreeOfParallelism' {
        $status = Start-SchemaMigration -Name cost-capped -Container users -Operation @{ AddField = 'capped'; Value = 1 } -MaxDegreeOfParallelism 4
        $status.Status | Should -Be 'completed'
        $status.Concurrency | Should -BeLessOrEqual 4
    }

    It '-NoEstimate skips the count: no total, no percentage' {
        $counted = Start-SchemaMigration -Name estimate-yes -Container users -Operation @{ AddField = 'est1'; Value = 1 } -MaxBatches 1
        $skipped = Start-SchemaMigration -Name estimate-no -Container users -Operation @{ AddField = 'est2'; Value = 1 } -MaxBatches 1 -NoEstimate
        $counted.Status, $skipped.Status | Should -Be 'cancelled', 'cancelled'
        $counted.PercentComplete | Should -BeGreaterThan 0
        $skipped.PercentComplete | Should -BeNullOrEmpty
        $tracking = $script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id IN ('estimate-yes', 'estimate-no')") | ConvertFrom-Json
        ($tracking | Where-Object id -EQ 'estimate-yes').estimatedTotal | Should -Be 5000
        ($tracking | Where-Object id -EQ 'estimate-no').PSObject.Properties.Name | Should -Not -Contain 'estimatedTotal'
        (Start-SchemaMigration -Name estimate-no -Container users -Operation @{ AddField = 'est2'; Value = 1 } -NoEstimate).Status | Should -Be 'completed'
    }
}

Describe 'Lifecycle errors' {
    It 'reports a missing container before anything is written' {
        $failure = { Start-SchemaMigration -Name nope -Container 'no-such-container' -Operation @{ AddField = 'a'; Value = 1 } -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'ContainerNotFound,*'
        $failure.ErrorDetails.RecommendedAction | Should -Match 'users' -Because 'it lists the containers that do exist'
        Get-MigrationStatus -Name nope | Should -BeNullOrEmpty
    }

    It 'rejects an unknown operation key with the place named' {
        $failure = { Start-SchemaMigration -Name bad -Container users -Operation @{ AddField = 'a'; Valeu = 1 } -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'InvalidMigrationDefinition,*'
        $failure.Exception.Message | Should -Match "'Valeu' is not a key of AddField"
    }

    It 'resets a cancelled migration so that it starts again from the first document' {
        (Start-SchemaMigration -Name 'resettable' -Container users -Operation @{ AddField = 'r'; Value = 1 } -BatchSize 100 -MaxBatches 2).Status | Should -Be 'cancelled'
        Reset-SchemaMigration -Name resettable -Confirm:$false
        Get-MigrationStatus -Name resettable | Should -BeNullOrEmpty
        $failure = { Reset-SchemaMigration -Name 'add-avatar' -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'MigrationNotResettable,*'
    }
}
