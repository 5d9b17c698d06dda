# Crash, live-writer and fault suites (docs/reliability.md lists what each injects and asserts).
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
}

AfterAll { Remove-TestDatabase }

Describe 'Crash suite' {
    It 'survives 10 SIGKILLs at random points: every document migrated once, counters consistent' {
        $seed = if ($env:CRASH_SEED) { [int]$env:CRASH_SEED } else { Get-Random -Maximum 100000 }
        Write-Host "    crash suite seed: $seed (replay with CRASH_SEED=$seed)"
        $random = [System.Random]::new($seed)
        $total = 4000
        New-SeededContainer 'crash' $total 16
        $before = if ($script:IsHarness) { Get-HarnessStats }
        $migration = "Start-SchemaMigration -Name crash-suite -Container crash -BatchSize 10 -MaxDegreeOfParallelism 1 -LeaseDuration 00:00:05 -Operation @{ Transform = { param(`$doc) if (`$doc.migrated) { return `$null }; `$doc.migrated = `$true; `$doc } }"
        $kills = Invoke-KillRounds $migration crash-suite 10 $random (Join-Path $TestDrive 'crash')
        $kills | Should -BeGreaterOrEqual 10 -Because 'the run is slow enough for ten kill points'

        Wait-Until { -not (Get-MigrationStatus -Name crash-suite).Owner } 30 | Should -BeTrue
        $final = Start-SchemaMigration -Name crash-suite -Container crash -Operation @{ Transform = { param($doc) if ($doc.migrated) { return $null }; $doc.migrated = $true; $doc } }
        $final.Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'crash', 'c.migrated = true') | Should -Be $total
        $final.Scanned | Should -Be $total -Because 'every run resumed from its checkpoint: no page was counted twice'
        $final.Processed | Should -BeLessOrEqual $total
        $final.Processed | Should -BeGreaterOrEqual ($total - $kills * 10) -Because 'at most one unfinished page per kill is uncounted'
        if ($script:IsHarness) {
            $after = Get-HarnessStats
            ((Get-MethodCount $after 'PUT 200' 'crash') - (Get-MethodCount $before 'PUT 200' 'crash')) | Should -Be $total -Because 'no document was changed twice'
        }
    }
}

Describe 'Live-writer suite' {
    It 'catches documents rewritten in the old shape behind its cursor, and loses no concurrent update' {
        $total = 2000
        New-SeededContainer 'live' $total 8
        $job = Start-ConnectedJob "Start-SchemaMigration -Name live-add -Container live -Operation @{ AddField = 'avatarUrl'; Template = 'a/{name:uri}' } -BatchSize 20 -MaxDegreeOfParallelism 2"

        # An old application version rewrites early documents in the old shape once the migration passed them,
        # and inserts new old-shape documents; a current one updates unrelated fields of others.
        Wait-Until { $script:Kit.Count($script:Database, 'live', 'IS_DEFINED(c.avatarUrl)') -ge 300 } 60 | Should -BeTrue
        $rewritten = $script:Kit.ReadAllJson($script:Database, 'live', 'SELECT TOP 50 * FROM c WHERE IS_DEFINED(c.avatarUrl)') | ConvertFrom-Json
        foreach ($doc in $rewritten) {
            $script:Kit.Upsert($script:Database, 'live', (@{ id = $doc.id; pk = $doc.pk; name = $doc.name; email = $doc.email } | ConvertTo-Json -Compress))
        }
        $script:Kit.Seed($script:Database, 'live', 100, 8, $total, $null)
        $touched = 1000..1099 | ForEach-Object { "d$_" }
        foreach ($id in $touched) { $script:Kit.PatchField($script:Database, 'live', $id, "p$([int]$id.Substring(1) % 8)", 'lastSeen', 'today') }

        $status = $job | Wait-Job -Timeout 180 | Receive-Job
        $status.Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'live', 'NOT IS_DEFINED(c.avatarUrl)') | Should -Be 0 -Because 'no document is left in the old shape'
        $script:Kit.Count($script:Database, 'live', "c.lastSeen = 'today'") | Should -Be 100 -Because 'no concurrent update is lost'
        $script:Kit.Count($script:Database, 'live', 'true') | Should -Be ($total + 100)
    }
}

Describe 'Fault suite' -Skip:(-not $script:IsHarness) {
    It 'completes under 20 % 429, 5 % 503, some 408 and dropped connections, with nothing lost' {
        New-SeededContainer 'storm' 2000 16
        Set-Faults @{ rate429 = 0.2; rate503 = 0.05; rate408 = 0.02; rateDrop = 0.01; retryAfterMs = 2; seed = 11; pathPattern = '/docs' }
        try {
            $status = Start-SchemaMigration -Name storm-add -Container storm -Operation @{ AddField = 's'; Value = 1 }, @{ RenameField = 'name'; To = 'fullName'; KeepSource = $true }
        }
        finally {
            $stats = Get-HarnessStats
            Set-Faults @{}
        }
        foreach ($kind in '429', '503', '408', 'drop') { $stats.injected.$kind | Should -BeGreaterThan 0 -Because "$kind faults were injected" }
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -BeGreaterOrEqual 1990
        $script:Kit.Count($script:Database, 'storm', 'c.s = 1 AND c.fullName = c.name') | Should -Be 2000
    }
}
