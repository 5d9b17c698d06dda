BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Database = New-TestDatabase
}

AfterAll { Remove-TestDatabase }

Describe 'Connect-CosmosMigration' {
    It 'connects, becomes the default, and creates the tracking container' {
        $context = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -PassThru -Confirm:$false
        $context.DatabaseName | Should -Be $script:Database
        $context.TrackingContainerExists | Should -BeTrue
        $script:Kit.Count($script:Database, 'migrations', 'true') | Should -Be 0
        Get-MigrationStatus | Should -BeNullOrEmpty
    }

    It 'accepts the key as a plain string or a SecureString, and a connection string' {
        $secure = ConvertTo-SecureString $script:Key -AsPlainText -Force
        { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $secure -Database $script:Database -SkipCertificateCheck } | Should -Not -Throw
        $cs = "AccountEndpoint=$($script:Endpoint);AccountKey=$($script:Key);DisableServerCertificateValidation=True"
        (Connect-CosmosMigration -ConnectionString $cs -Database $script:Database -PassThru).Endpoint | Should -Be $script:Endpoint
    }

    It 'hands -LowPriority and -AllowBulkExecution to the SDK client' {
        $plain = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -PassThru
        $plain.LowPriority | Should -BeFalse
        $plain.AllowBulkExecution | Should -BeFalse

        # The properties read the options the client was built with.
        $low = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -LowPriority -AllowBulkExecution -PassThru
        $low.LowPriority | Should -BeTrue
        $low.AllowBulkExecution | Should -BeTrue
    }

    It 'runs a migration at low priority end to end' {
        $low = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -LowPriority -PassThru
        $script:Kit.CreateContainer($script:Database, 'lowprio')
        $script:Kit.SeedUsers($script:Database, 'lowprio', 25, 5)
        $status = Start-SchemaMigration -Context $low -Name lowprio-add -Container lowprio -Operation @{ AddField = 'tier'; Value = 'free' }
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 25
        $script:Kit.Count($script:Database, 'lowprio', 'c.tier = "free"') | Should -Be 25
    }

    It 'falls back to COSMOS_ENDPOINT, COSMOS_KEY and COSMOS_DATABASE' {
        $env:COSMOS_DATABASE = $script:Database
        try {
            (Connect-CosmosMigration -SkipCertificateCheck -PassThru).DatabaseName | Should -Be $script:Database
        }
        finally { Remove-Item env:COSMOS_DATABASE }
    }

    It 'keeps a connection the user holds usable after connecting again' {
        $first = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -PassThru
        # A new default connection: the one held in $first must not be closed under the user.
        Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck
        New-SeededContainer 'held' 20 2
        $status = Start-SchemaMigration -Context $first -Name 'held-context' -Container 'held' -Operation @{ AddField = 'held'; Value = 1 } -ErrorAction Stop
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 20
        (Get-MigrationStatus -Context $first -Name 'held-context').Processed | Should -Be 20
    }

    It 'fails with ContextClosed, not a raw ObjectDisposedException, on a connection that was closed' {
        $closed = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck -PassThru
        Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $script:Database -SkipCertificateCheck
        $closed.Dispose()
        $failure = { Get-MigrationStatus -Context $closed -ErrorAction Stop } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -BeLike 'ContextClosed,*'
        $failure.CategoryInfo.Category | Should -Be 'InvalidOperation'
        $failure.TargetObject | Should -Be $script:Endpoint
        $failure.ErrorDetails.RecommendedAction | Should -BeLike '*Connect-CosmosMigration*'
        # The session's default connection is a new one, and works.
        { Get-MigrationStatus -ErrorAction Stop } | Should -Not -Throw
    }

    It 'fails with <Id> for <Case>' -ForEach @(
        @{ Case = 'a missing database'; Id = 'DatabaseNotFound'; Category = 'ObjectNotFound'; Endpoint = $null; Database = 'no-such-db' }
        @{ Case = 'an unreachable endpoint'; Id = 'EndpointUnreachable'; Category = 'ConnectionError'; Endpoint = 'https://127.0.0.1:1/'; Database = 'x' }
        @{ Case = 'a malformed endpoint'; Id = 'InvalidEndpoint'; Category = 'InvalidArgument'; Endpoint = 'not-a-url'; Database = 'x' }
        @{ Case = 'a malformed key'; Id = 'InvalidKey'; Category = 'InvalidArgument'; Endpoint = $null; Database = 'x'; Key = 'not base64!' }
    ) {
        $arguments = @{ Endpoint = $(if ($Endpoint) { $Endpoint } else { $script:Endpoint }); Key = $(if ($_.Key) { $_.Key } else { $script:Key }); Database = $Database; SkipCertificateCheck = $true; TimeoutSec = 10 }
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $failure = { Connect-CosmosMigration @arguments -ErrorAction Stop } | Should -Throw -PassThru
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 15 -Because 'a bad connection fails within seconds, not minutes'
        $failure.FullyQualifiedErrorId | Should -BeLike "$Id,*"
        $failure.CategoryInfo.Category | Should -Be $Category
        $failure.ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
    }

    It 'ends the managed identity path in a clear error, not a hang' {
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        $failure = { Connect-CosmosMigration -Identity -Endpoint $script:Endpoint -Database $script:Database -TimeoutSec 15 -ErrorAction Stop } | Should -Throw -PassThru
        $watch.Elapsed.TotalSeconds | Should -BeLessThan 30
        $failure.FullyQualifiedErrorId | Should -Match '^(IdentityUnavailable|AuthenticationFailed|EndpointUnreachable),'
    }

    It 'never shows the key in any stream or error' {
        $key = $script:Key
        $all = & {
            Connect-CosmosMigration -Endpoint $script:Endpoint -Key $key -Database $script:Database -SkipCertificateCheck -PassThru -Verbose -Debug
            try { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $key -Database 'no-such-db' -SkipCertificateCheck -Verbose -Debug } catch { $_ | Format-List * -Force | Out-String }
            try { Connect-CosmosMigration -ConnectionString "AccountEndpoint=$($script:Endpoint);AccountKey=$key;" -Database 'no-such-db' -SkipCertificateCheck } catch { $_ | Format-List * -Force | Out-String }
            try { Connect-CosmosMigration -Endpoint 'https://127.0.0.1:1/' -Key $key -Database 'x' -SkipCertificateCheck -TimeoutSec 5 -Verbose -Debug } catch { $_ | Format-List * -Force | Out-String; $_.Exception.ToString() }
        } *>&1 | Out-String
        $all += ($Error | ForEach-Object { $_ | Format-List * -Force | Out-String; $_.Exception | Format-List * -Force | Out-String }) -join ''
        $all | Should -Not -BeNullOrEmpty
        $all.Contains($key) | Should -BeFalse
        $all.Contains($key.Substring(0, 20)) | Should -BeFalse
    }
}
