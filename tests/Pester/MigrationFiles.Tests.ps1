# Migration files: a folder runs in name order, validated first; checksums; pending status.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
    $script:Kit.CreateContainer($script:Database, 'users', '/pk')
    $script:Kit.SeedUsers($script:Database, 'users', 100, 4)

    function New-MigrationFolder([hashtable] $Files) {
        $folder = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path $folder | Out-Null
        foreach ($file in $Files.GetEnumerator()) { Set-Content -Path (Join-Path $folder $file.Key) -Value $file.Value }
        return $folder
    }
    function Get-TrackingCount { $script:Kit.Count($script:Database, 'migrations', 'true') }
}

AfterAll { Remove-TestDatabase }

Describe 'A migrations folder' {
    It 'runs the pending migrations in name order and stops at the first that fails' {
        $folder = New-MigrationFolder @{
            '0002_second.psd1' = "@{ Name = 'f-0002'; Container = 'users'; Operations = @( @{ RequireField = 'nothere' } ) }"
            '0001_first.psd1'  = "@{ Name = 'f-0001'; Container = 'users'; Operations = @( @{ AddField = 'one'; Value = 1 } ) }"
            '0003_third.psd1'  = "@{ Name = 'f-0003'; Container = 'users'; Operations = @( @{ AddField = 'three'; Value = 3 } ) }"
        }
        $results = Start-SchemaMigration -Path $folder -ErrorAction SilentlyContinue -ErrorVariable failure
        @($results.Name) | Should -Be @('f-0001', 'f-0002')
        $results[1].Status | Should -Be 'failed'
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'RequirementNotMet,*'
        $status = Get-MigrationStatus -Path $folder
        @($status.Name) | Should -Be @('f-0001', 'f-0002', 'f-0003')
        @($status.Status) | Should -Be @('completed', 'failed', 'pending')
        $script:Kit.Count($script:Database, 'users', 'IS_DEFINED(c.three)') | Should -Be 0
    }

    It 'resumes a failed migration from its status object, by name and file' {
        $folder = New-MigrationFolder @{ '0001_fix.psd1' = "@{ Name = 'f-fixable'; Container = 'users'; Operations = @( @{ RequireField = 'fixed' } ) }" }
        Start-SchemaMigration -Path $folder -ErrorAction SilentlyContinue | Out-Null
        Invoke-Backfill -Container users -Name f-backfill-fixed -Set @{ fixed = $true } | Out-Null
        $resumed = Get-MigrationStatus -Status failed -Name f-fixable | Start-SchemaMigration
        $resumed.Name | Should -Be 'f-fixable'
        $resumed.Status | Should -Be 'completed'
    }

    It 'runs a Transform script beside the migration file' {
        $folder = New-MigrationFolder @{
            '0001_transform.psd1' = "@{ Name = 'f-transform'; Container = 'users'; Operations = @( @{ Transform = 'transforms/initials.ps1' } ) }"
        }
        New-Item -ItemType Directory -Path (Join-Path $folder 'transforms') | Out-Null
        Set-Content (Join-Path $folder 'transforms/initials.ps1') 'param($doc) if ($doc.initials) { return $null }; $doc.initials = ($doc.name -split " " | ForEach-Object { $_[0] }) -join ""; $doc'
        $pending = Get-MigrationStatus -Path $folder
        $pending.Status | Should -Be 'pending'
        (Start-SchemaMigration -Path $folder).Processed | Should -Be 100
        $ran = Get-MigrationStatus -Path $folder
        $ran.Checksum | Should -Be $pending.Checksum -Because 'a pending file reports the checksum it will run with, transform text included'
        $ran.ChecksumMismatch | Should -BeFalse
        ($script:Kit.ReadAllJson($script:Database, 'users', "SELECT * FROM c WHERE c.id = 'd3'") | ConvertFrom-Json).initials | Should -Be 'U3'
    }

    It 'warns when a completed migration''s file changed, and fails with -Strict' {
        $folder = New-MigrationFolder @{ '0001_a.psd1' = "@{ Name = 'f-checksum'; Container = 'users'; Operations = @( @{ AddField = 'cs'; Value = 1 } ) }" }
        (Start-SchemaMigration -Path $folder).Status | Should -Be 'completed'
        Set-Content (Join-Path $folder '0001_a.psd1') "@{ Name = 'f-checksum'; Container = 'users'; Operations = @( @{ AddField = 'cs'; Value = 2 } ) }"
        $output = Start-SchemaMigration -Path $folder 3>&1
        ($output | Where-Object { $_ -is [System.Management.Automation.WarningRecord] }).Message | Should -Match 'changed since it completed'
        (Get-MigrationStatus -Path $folder).ChecksumMismatch | Should -BeTrue
        $failure = { Start-SchemaMigration -Path $folder -Strict -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'ChecksumMismatch,*'
        $script:Kit.Count($script:Database, 'users', 'c.cs = 2') | Should -Be 0 -Because 'a changed migration is never silently re-run'
    }

    It 'reports <Case> before anything is written' -ForEach @(
        @{ Case = 'a syntax error'; Id = 'InvalidMigrationDefinition'; Text = "@{ Name = 'bad'; Container = 'users'; Operations = @( @{ AddField = 'a' " ; Match = 'line' }
        @{ Case = 'an unknown operation'; Id = 'InvalidMigrationDefinition'; Text = "@{ Name = 'bad'; Container = 'users'; Operations = @( @{ DropTable = 'a' } ) }"; Match = 'Known operations' }
        @{ Case = 'a misspelt key'; Id = 'InvalidMigrationDefinition'; Text = "@{ Name = 'bad'; Container = 'users'; Operations = @( @{ AddField = 'a'; Valeu = 1 } ) }"; Match = "'Valeu'" }
        @{ Case = 'a wrong type'; Id = 'InvalidMigrationDefinition'; Text = "@{ Name = 'bad'; Container = 'users'; Operations = @( @{ RenameField = 'a'; To = 'b'; KeepSource = 'maybe' } ) }"; Match = 'KeepSource' }
        @{ Case = 'code in a data file'; Id = 'InvalidMigrationDefinition'; Text = "@{ Name = (Get-Date).ToString(); Container = 'users'; Operations = @( @{ AddField = 'a'; Value = 1 } ) }"; Match = 'literal values' }
        @{ Case = 'a missing container'; Id = 'ContainerNotFound'; Text = "@{ Name = 'bad'; Container = 'usres'; Operations = @( @{ AddField = 'a'; Value = 1 } ) }"; Match = 'usres' }
    ) {
        $folder = New-MigrationFolder @{
            '0001_good.psd1' = "@{ Name = 'f-good-$([guid]::NewGuid().ToString('N').Substring(0,6))'; Container = 'users'; Operations = @( @{ AddField = 'good'; Value = 1 } ) }"
            '0002_bad.psd1'  = $Text
        }
        $before = Get-TrackingCount
        $failure = { Start-SchemaMigration -Path $folder -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike "$Id,*"
        $failure.Exception.Message | Should -Match $Match
        Get-TrackingCount | Should -Be $before
        $script:Kit.Count($script:Database, 'users', 'IS_DEFINED(c.good)') | Should -Be 0
    }

    It 'reports duplicate names across files before anything is written' {
        $folder = New-MigrationFolder @{
            '0001_a.psd1' = "@{ Name = 'f-dup'; Container = 'users'; Operations = @( @{ AddField = 'dup'; Value = 1 } ) }"
            '0002_b.psd1' = "@{ Name = 'f-dup'; Container = 'users'; Operations = @( @{ AddField = 'dup'; Value = 2 } ) }"
        }
        $failure = { Start-SchemaMigration -Path $folder -ErrorAction Stop } | Should -Throw -PassThru
        $failure.Exception.Message | Should -Match 'already used'
        Get-MigrationStatus -Name f-dup | Should -BeNullOrEmpty
    }
}

Describe 'The examples folder' {
    It 'completes every migration on freshly seeded data; the required fields conform and the index exists' {
        $database = New-TestDatabase
        try {
            $script:Kit.CreateContainer($database, 'users', '/pk')
            $script:Kit.CreateContainer($database, 'posts', '/pk')
            $script:Kit.SeedUsers($database, 'users', 500, 10)
            $script:Kit.SeedPosts($database, 'posts', 500, 10)
            $context = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $database -SkipCertificateCheck -PassThru
            $results = Start-SchemaMigration -Path (Join-Path $script:Root 'examples/migrations') -Context $context
            @($results | Where-Object Status -NE 'completed') | Should -BeNullOrEmpty
            $results.Count | Should -Be @(Get-ChildItem (Join-Path $script:Root 'examples/migrations') -Filter *.psd1).Count
            $conformance = @(
                Test-SchemaConformance -Context $context -Container users -Require @{ avatarUrl = 'string'; createdAt = 'number'; updatedAt = 'number'; displayName = 'string' }
                Test-SchemaConformance -Context $context -Container posts -Require @{ priorityLevel = 'number' }
            )
            ($conformance | Measure-Object NonConforming -Sum).Sum | Should -Be 0
            $policy = $script:Kit.IndexingPolicyJson($database, 'posts') | ConvertFrom-Json
            $policy.compositeIndexes[0].path | Should -Be @('/status', '/publishedAt')
            $script:Kit.Count($database, 'users', 'IS_DEFINED(c.userName)') | Should -Be 0
            $script:Kit.Count($database, 'posts', 'IS_DEFINED(c.legacyField)') | Should -Be 0
        }
        finally {
            $script:Kit.DeleteDatabase($database)
            Connect-Test $script:Database
        }
    }

    It 'runs on hierarchical-key containers (tenant / pk / id): dry run, every migration, backfills, conformance' {
        $database = New-TestDatabase
        try {
            foreach ($name in 'users', 'posts') { $script:Kit.CreateHierarchicalContainer($database, $name, @('/tenant', '/pk', '/id')) }
            $script:Kit.SeedUsers($database, 'users', 500, 10)
            $script:Kit.SeedPosts($database, 'posts', 500, 10)
            $before = $script:Kit.ReadAllJson($database, 'users')
            $context = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $database -SkipCertificateCheck -PassThru
            $examples = Join-Path $script:Root 'examples/migrations'

            $dry = Start-SchemaMigration -Path $examples -Context $context -WhatIf 6>$null
            ($dry | Where-Object Name -EQ '0001_add_avatar_url').WouldChange | Should -Be 500
            $script:Kit.ReadAllJson($database, 'users') | Should -Be $before -Because 'a dry run writes nothing'

            $results = Start-SchemaMigration -Path $examples -Context $context
            @($results | Where-Object Status -NE 'completed') | Should -BeNullOrEmpty
            $results.Count | Should -Be @(Get-ChildItem $examples -Filter *.psd1).Count
            ($results | Where-Object Name -EQ '0001_add_avatar_url').Processed | Should -Be 500
            $conformance = @(
                Test-SchemaConformance -Context $context -Container users -Require @{ avatarUrl = 'string'; createdAt = 'number'; updatedAt = 'number'; displayName = 'string' }
                Test-SchemaConformance -Context $context -Container posts -Require @{ priorityLevel = 'number' }
            )
            ($conformance | Measure-Object NonConforming -Sum).Sum | Should -Be 0
            $script:Kit.Count($database, 'users', 'IS_DEFINED(c.userName)') | Should -Be 0
            $script:Kit.Count($database, 'posts', 'IS_DEFINED(c.legacyField)') | Should -Be 0

            # A transform (ETag-conditioned replace under the full key) and a conformance gap.
            $backfill = Invoke-Backfill -Context $context -Container users -Name hk-upper -Filter "c.tenant = 'tenant1'" -ScriptBlock { param($doc) $doc.displayName = $doc.displayName.ToUpperInvariant(); $doc }
            $backfill.Processed | Should -Be $script:Kit.Count($database, 'users', "c.tenant = 'tenant1'")
            $script:Kit.Count($database, 'users', "c.tenant = 'tenant1' AND c.displayName = UPPER(c.displayName)") | Should -Be $backfill.Processed
            (Invoke-Backfill -Context $context -Container users -Name hk-unset -Filter "c.tenant = 'tenant2'" -Unset createdAt).Processed | Should -BeGreaterThan 0
            $gap = Test-SchemaConformance -Context $context -Container users -Require @{ createdAt = 'number' }
            $gap.NonConforming | Should -Be $script:Kit.Count($database, 'users', "c.tenant = 'tenant2'")
            $script:Kit.Count($database, 'users', 'true') | Should -Be 500 -Because 'no document was duplicated or lost under its hierarchical key'
        }
        finally {
            $script:Kit.DeleteDatabase($database)
            Connect-Test $script:Database
        }
    }
}
