# What a new user meets in the first hour, each mended: a stopped backfill or inline migration
# resumes from its status or its name, -MaxBatches counts what it says, a certificate error names
# -SkipCertificateCheck, -Emulator takes the port the local server fell back to, and a wrong key is
# refused (the local server checks signatures as the service does).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Database = New-TestDatabase
    $script:Kit.CreateContainer($script:Database, 'users', '/pk')
    $script:Kit.SeedUsers($script:Database, 'users', 400, 4)
    Connect-Test $script:Database
}
AfterAll { Remove-TestDatabase }

Describe 'Resuming a stopped backfill or inline migration' {
    It 'resumes a cancelled Invoke-Backfill from its status piped to Start-SchemaMigration' {
        $first = Invoke-Backfill -Container users -Name fh-backfill -Set @{ verified = $false; tier = @{ name = 'free'; level = 1 } } -Rename @{ email = 'mail' } -Filter 'IS_DEFINED(c.email)' -BatchSize 50 -MaxBatches 1 -Confirm:$false
        $first.Status | Should -Be 'cancelled'
        $first.Processed | Should -Be 50
        $first.Path | Should -BeNullOrEmpty
        $resumed = @(Get-MigrationStatus -Status cancelled | Where-Object Name -EQ 'fh-backfill' | Start-SchemaMigration -Confirm:$false)
        $resumed | Should -HaveCount 1
        $resumed[0].Status | Should -Be 'completed'
        $resumed[0].Processed | Should -Be 400
        $script:Kit.Count($script:Database, 'users', 'c.verified = false AND c.tier.level = 1 AND IS_DEFINED(c.mail) AND NOT IS_DEFINED(c.email)') | Should -Be 400
        $warnings = @()
        (Start-SchemaMigration -Name fh-backfill -WarningVariable warnings -Confirm:$false).Outcome | Should -Be 'Skipped'
        $warnings | Should -BeNullOrEmpty -Because 'the stored definition rebuilds the same migration (same checksum)'
    }

    It 'resumes a cancelled inline migration by its name alone' {
        (Start-SchemaMigration -Name fh-inline -Container users -Description 'flag and level' -BatchSize 40 -MaxBatches 2 -Confirm:$false -Operation @(
            @{ AddField = 'flag'; Value = 'on' }
            @{ AddField = 'level'; Value = 3.5 }
        )).Status | Should -Be 'cancelled'
        $resumed = Start-SchemaMigration -Name fh-inline -Confirm:$false
        $resumed.Status | Should -Be 'completed'
        $resumed.Processed | Should -Be 400
        $resumed.Description | Should -Be 'flag and level'
        $script:Kit.Count($script:Database, 'users', "c.flag = 'on' AND c.level = 3.5") | Should -Be 400
    }

    It 'says to run Invoke-Backfill again with its -ScriptBlock when the backfill has a transform' {
        (Invoke-Backfill -Container users -Name fh-script -ScriptBlock { param($doc) $doc.scripted = 1; $doc } -BatchSize 50 -MaxBatches 1 -Confirm:$false).Status | Should -Be 'cancelled'
        $failure = { Get-MigrationStatus -Name fh-script | Start-SchemaMigration -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'TransformNotStored,*'
        $failure.ErrorDetails.RecommendedAction | Should -Match 'Invoke-Backfill again .*-ScriptBlock'
        (Invoke-Backfill -Container users -Name fh-script -ScriptBlock { param($doc) $doc.scripted = 1; $doc } -Confirm:$false).Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'users', 'c.scripted = 1') | Should -Be 400
    }

    It 'names the file of a file migration, and fails clearly for a name that does not exist' {
        $file = Join-Path $script:Root 'examples/migrations/0001_add_avatar_url.psd1'
        (Start-SchemaMigration -Path $file -BatchSize 50 -MaxBatches 1 -Confirm:$false).Status | Should -Be 'cancelled'
        $failure = { Start-SchemaMigration -Name 0001_add_avatar_url -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'ResumeFromFile,*'
        $failure.ErrorDetails.RecommendedAction | Should -BeLike "*-Path '$file'*"
        (Get-MigrationStatus -Name 0001_add_avatar_url | Start-SchemaMigration -Confirm:$false).Status | Should -Be 'completed'
        { Start-SchemaMigration -Name no-such-migration -ErrorAction Stop } | Should -Throw -ErrorId 'MigrationNotFound,*'
    }
}

Describe '-MaxBatches' {
    It 'reports the pages of documents it allowed, not the empty pages of empty ranges' {
        # One partition key value: one range holds every document, the other three are empty (each
        # answers one empty page, which is no batch of work and used to be counted).
        $script:Kit.CreateContainer($script:Database, 'onekey', '/pk')
        $script:Kit.SeedUsers($script:Database, 'onekey', 200, 1)
        $status = Start-SchemaMigration -Name fh-batches -Container onekey -Operation @{ AddField = 'batched'; Value = 1 } -BatchSize 30 -MaxBatches 2 -Confirm:$false
        $status.Status | Should -Be 'cancelled'
        $status.Processed | Should -Be 60
        $status.Message | Should -Match '^Stopped \(MaxBatches\) after 2 page\(s\) in this run'
    }
}

Describe 'Connecting to the local server' {
    It 'fails on its self-signed certificate with CertificateNotTrusted, whose fix names -SkipCertificateCheck' {
        $failure = { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -TimeoutSec 15 -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'CertificateNotTrusted,*'
        $failure.CategoryInfo.Category | Should -Be 'ConnectionError'
        $failure.ErrorDetails.RecommendedAction | Should -Match '-SkipCertificateCheck'
        $failure.ErrorDetails.RecommendedAction | Should -Not -Match 'firewall'
        # The same from COSMOS_ENDPOINT and COSMOS_KEY, as a first session sets them.
        $env:COSMOS_ENDPOINT = $script:Endpoint; $env:COSMOS_KEY = $script:Key
        { Connect-CosmosMigration -Database $script:Database -TimeoutSec 15 -ErrorAction Stop } | Should -Throw -ErrorId 'CertificateNotTrusted,*'
        Connect-Test $script:Database
    }

    It 'takes -Endpoint with -Emulator (the port the server fell back to)' {
        $context = Connect-CosmosMigration -Emulator -Endpoint $script:Endpoint -Database $script:Database -PassThru
        $context.Endpoint | Should -Be $script:Endpoint
        (Start-SchemaMigration -Context $context -Name fh-emulator -Container users -Operation @{ AddField = 'viaEmulator'; Value = $true } -Confirm:$false).Status | Should -Be 'completed'
        Connect-Test $script:Database
    }

    It 'refuses a wrong key that is valid base64 with AuthenticationFailed' {
        $bytes = [byte[]]::new(64)
        [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
        $wrong = [Convert]::ToBase64String($bytes)
        $failure = { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $wrong -Database $script:Database -SkipCertificateCheck -TimeoutSec 15 -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'AuthenticationFailed,*'
        $failure.ErrorDetails.RecommendedAction | Should -Match 'Check the key'
        $failure.Exception.Message.Contains($wrong) | Should -BeFalse
        Connect-Test $script:Database
    }
}
