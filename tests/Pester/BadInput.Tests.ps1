# The bad-input catalogue: each case gets a stable FullyQualifiedErrorId, a message that says what
# to do, and leaves the container unchanged (or changed only as far as the checkpoint says).
BeforeDiscovery {
    $script:Cases = @(
        @{ Case = 'malformed endpoint'; Id = 'InvalidEndpoint'; Run = { Connect-CosmosMigration -Endpoint 'localhost:8081' -Key $script:Key -Database $script:Database } }
        @{ Case = 'unreachable endpoint'; Id = 'EndpointUnreachable'; Run = { Connect-CosmosMigration -Endpoint 'https://127.0.0.1:9/' -Key $script:Key -Database $script:Database -SkipCertificateCheck -TimeoutSec 5 } }
        @{ Case = 'missing database'; Id = 'DatabaseNotFound'; Run = { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database 'nothere' -SkipCertificateCheck } }
        @{ Case = 'misspelt database (case)'; Id = 'DatabaseNotFound'; Run = { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database.ToUpperInvariant() -SkipCertificateCheck } }
        @{ Case = 'malformed key'; Id = 'InvalidKey'; Run = { Connect-CosmosMigration -Endpoint $script:Endpoint -Key 'not-a-key' -Database $script:Database -SkipCertificateCheck } }
        @{ Case = 'connection string without a key'; Id = 'InvalidConnectionString'; Run = { Connect-CosmosMigration -ConnectionString "AccountEndpoint=$($script:Endpoint);" -Database $script:Database } }
        @{ Case = 'unknown operation'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-1 -Container shop -Operation @{ DropField = 'a' } } }
        @{ Case = 'misspelt operation key'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-2 -Container shop -Operation @{ AddField = 'a'; Valeu = 1 } } }
        @{ Case = 'wrong value type'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-3 -Container shop -Operation @{ RenameField = 'a'; To = 'b'; KeepSource = 'maybe' } } }
        @{ Case = 'two sources for AddField'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-4 -Container shop -Operation @{ AddField = 'a'; Value = 1; CopyFrom = 'b' } } }
        @{ Case = 'unclosed template placeholder'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-5 -Container shop -Operation @{ AddField = 'a'; Template = 'x/{name' } } }
        @{ Case = 'unknown conversion type'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-6 -Container shop -Operation @{ ConvertField = 'a'; To = 'b'; Type = 'date' } } }
        @{ Case = 'one-path composite index'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-7 -Container shop -Operation @{ AddIndex = @('status ASC') } } }
        @{ Case = 'unknown required type'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-8 -Container shop -Operation @{ RequireField = 'a'; Type = 'integer' } } }
        @{ Case = 'misspelt container'; Id = 'ContainerNotFound'; Run = { Start-SchemaMigration -Name bad-9 -Container shpo -Operation @{ AddField = 'a'; Value = 1 } } }
        @{ Case = 'system property as target'; Id = 'InvalidFieldPath'; Run = { Start-SchemaMigration -Name bad-10 -Container shop -Operation @{ RemoveField = '_etag' } } }
        @{ Case = 'SQL injection through a filter'; Id = 'InvalidFilter'; Run = { Invoke-Backfill -Container shop -Name bad-11 -Filter 'true) OR (1 = 1' -Set @{ a = 1 } } }
        @{ Case = 'SQL injection through a path'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name bad-12 -Container shop -Operation @{ AddField = 'a"] OR c["b'; Value = 1 } } }
        @{ Case = 'a filter the service rejects'; Id = 'InvalidQuery'; Run = { Invoke-Backfill -Container shop -Name bad-13 -Filter 'c.a === 1' -Set @{ a = 1 } } }
        @{ Case = 'invalid migration name'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Name 'a/b' -Container shop -Operation @{ AddField = 'a'; Value = 1 } } }
        @{ Case = 'name already used for another container'; Id = 'MigrationNameInUse'; Run = { Start-SchemaMigration -Name 'shop-done' -Container other -Operation @{ AddField = 'a'; Value = 1 } } }
        @{ Case = 'stopping a migration that is not running'; Id = 'MigrationNotRunning'; Run = { Stop-SchemaMigration -Name 'shop-done' -Confirm:$false } }
        @{ Case = 'resetting a completed migration'; Id = 'MigrationNotResettable'; Run = { Reset-SchemaMigration -Name 'shop-done' -Confirm:$false } }
        @{ Case = 'resetting an unknown migration'; Id = 'MigrationNotFound'; Run = { Reset-SchemaMigration -Name 'never-ran' -Confirm:$false } }
        @{ Case = 'a live lease held by another runner'; Id = 'MigrationAlreadyRunning'; Run = { Start-SchemaMigration -Name 'held' -Container shop -Operation @{ AddField = 'a'; Value = 1 } } }
        @{ Case = 'a transform script file that is missing'; Id = 'InvalidMigrationDefinition'; Run = { Start-SchemaMigration -Path (Join-Path $script:Files 'missing-transform.psd1') } }
        @{ Case = 'a transform that throws for some documents'; Id = 'DocumentMigrationFailed'; Changes = 'checkpoint'; Run = { Invoke-Backfill -Container shop -Name bad-17 -BatchSize 10 -ScriptBlock { param($doc) if ($doc.id -eq 'd25') { throw 'bad row' }; $doc.t = 1; $doc } } }
        @{ Case = 'a conversion that cannot convert'; Id = 'DocumentMigrationFailed'; Changes = 'checkpoint'; Run = { Start-SchemaMigration -Name bad-18 -Container shop -BatchSize 10 -Operation @{ ConvertField = 'name'; To = 'n'; Type = 'number' } } }
        @{ Case = 'a transform that returns no document'; Id = 'DocumentMigrationFailed'; Changes = 'checkpoint'; Run = { Invoke-Backfill -Container shop -Name bad-19 -ScriptBlock { param($doc) 'oops' } } }
        @{ Case = 'a template over a missing field'; Id = 'DocumentMigrationFailed'; Changes = 'checkpoint'; Run = { Start-SchemaMigration -Name bad-20 -Container shop -Operation @{ AddField = 'u'; Template = '{nickname}' } } }
    )
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
    New-SeededContainer 'shop' 50 5
    $script:Kit.CreateContainer($script:Database, 'other', '/pk')
    $null = Start-SchemaMigration -Name 'shop-done' -Container shop -Operation @{ AddField = 'done'; Value = 1 }
    $far = [DateTimeOffset]::UtcNow.AddHours(1).ToUnixTimeMilliseconds()
    $script:Kit.Upsert($script:Database, 'migrations', (@{ id = 'held'; name = 'held'; status = 'running'; container = 'shop'; startedAt = 1; processed = 0; scanned = 0; lease = @{ owner = @{ host = 'other-host'; processId = 42; user = 'ops'; runId = 'x' }; expiresAt = $far } } | ConvertTo-Json -Depth 5 -Compress))
    $script:Files = Join-Path $TestDrive 'files'
    New-Item -ItemType Directory -Path $script:Files | Out-Null
    Set-Content (Join-Path $script:Files 'missing-transform.psd1') "@{ Name = 'bad-16'; Container = 'shop'; Operations = @( @{ Transform = 'nothere.ps1' } ) }"
}

AfterAll { Remove-TestDatabase }

Describe 'Bad input: <Case>' -ForEach $script:Cases {
    It 'fails with <Id>, says what to do, and changes nothing it should not' {
        Connect-Test $script:Database
        $before = $script:Kit.ReadAllJson($script:Database, 'shop', 'SELECT * FROM c')
        $trackingBefore = $script:Kit.Count($script:Database, 'migrations', 'true')
        $record = (Invoke-Refusal $Run $Id).Record
        "$($record.ErrorDetails.RecommendedAction)$($record.Exception.Message)" | Should -Match '(Check|Pass|Use|Write|Fix|Run|Wait|Give|Copy|Put|Keep|List|Backfill|Stop|start|rerun|Known|takes|must|is a|not a|does not exist|already|only)'
        if ($Changes -eq 'checkpoint') {
            $status = Get-MigrationStatus | Where-Object Status -EQ 'failed' | Sort-Object StartedAt | Select-Object -Last 1
            $status.Status | Should -Be 'failed'
            $changed = @($script:Kit.ReadAllJson($script:Database, 'shop', 'SELECT * FROM c') | Where-Object { $_ -notin $before }).Count
            $changed | Should -Be $status.Processed -Because 'only what the checkpoint counts was changed'
        }
        else {
            $script:Kit.ReadAllJson($script:Database, 'shop', 'SELECT * FROM c') | Should -Be $before
            $script:Kit.Count($script:Database, 'migrations', 'true') | Should -Be $trackingBefore
        }
    }
}

Describe 'Edge cases that are not errors' {
    It 'takes over an expired lease and resumes' {
        $script:Kit.Upsert($script:Database, 'migrations', (@{ id = 'expired'; name = 'expired'; status = 'running'; container = 'shop'; startedAt = 1; processed = 0; scanned = 0; lease = @{ owner = @{ host = 'gone'; processId = 1; user = 'ops'; runId = 'y' }; expiresAt = 1 } } | ConvertTo-Json -Depth 5 -Compress))
        $status = Start-SchemaMigration -Name expired -Container shop -Operation @{ AddField = 'e'; Value = 1 }
        $status.Status | Should -Be 'completed'
        $status.Outcome | Should -Be 'Resumed'
    }

    It 'completes on an empty container' {
        $script:Kit.CreateContainer($script:Database, 'empty', '/pk')
        $status = Start-SchemaMigration -Name empty-add -Container empty -Operation @{ AddField = 'e'; Value = 1 }
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 0
    }

    It 'migrates a large (1.5 MB) document' {
        $script:Kit.CreateContainer($script:Database, 'large', '/pk')
        $script:Kit.Upsert($script:Database, 'large', (@{ id = 'big'; pk = 'p'; blob = ('x' * 1500000) } | ConvertTo-Json -Compress))
        (Start-SchemaMigration -Name large-add -Container large -Operation @{ AddField = 'e'; Value = 1 }).Processed | Should -Be 1
        ($script:Kit.ReadAllJson($script:Database, 'large', 'SELECT * FROM c') | ConvertFrom-Json).blob.Length | Should -Be 1500000
    }

    It 'says NotConnected in a session that never connected' {
        $result = Start-ThreadJob { param($module) Import-Module $module; try { Get-MigrationStatus -ErrorAction Stop } catch { $_.FullyQualifiedErrorId } } -ArgumentList $script:ModulePath | Wait-Job | Receive-Job
        $result | Should -BeLike 'NotConnected,*'
    }
}
