# The key and the connection string never appear in any output stream, error, $Error or tracking document.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    . (Join-Path $PSScriptRoot 'SignInStandIns.ps1')
    $script:Database = New-TestDatabase
    New-SeededContainer 'users' 30 3
}

AfterAll { Remove-TestDatabase }

Describe 'Secrets' {
    It 'are absent from every stream, error and tracking document of every cmdlet run with -Verbose -Debug' {
        $key = $script:Key
        $connectionString = "AccountEndpoint=$($script:Endpoint);AccountKey=$key;DisableServerCertificateValidation=True"
        $DebugPreference = 'Continue'
        $Error.Clear()
        $streams = & {
            Connect-CosmosMigration -ConnectionString $connectionString -Database $script:Database -PassThru -Verbose -Debug -Confirm:$false
            Connect-CosmosMigration -Endpoint $script:Endpoint -Key $key -Database $script:Database -SkipCertificateCheck -PassThru -Verbose -Debug
            try { Connect-CosmosMigration -Endpoint $script:Endpoint -Key $key -Database 'missing' -SkipCertificateCheck -Verbose -Debug } catch { $_ }
            try { Connect-CosmosMigration -ConnectionString "AccountEndpoint=https://127.0.0.1:9/;AccountKey=$key;" -Database x -TimeoutSec 3 -Verbose -Debug } catch { $_ }
            Start-SchemaMigration -Name s1 -Container users -Operation @{ AddField = 'a'; Value = 1 } -Verbose -Debug
            Start-SchemaMigration -Name s1 -Container users -Operation @{ AddField = 'a'; Value = 1 } -WhatIf -Verbose -Debug
            Invoke-Backfill -Container users -Name s2 -Set @{ b = 2 } -Verbose -Debug
            Invoke-Backfill -Container users -Name s3 -ScriptBlock { param($doc) throw 'nope' } -Verbose -Debug -ErrorAction Continue
            Start-SchemaMigration -Name s4 -Container users -Operation @{ AddField = 'c'; Value = 3 } -MaxBatches 1 -BatchSize 10 -Verbose -Debug
            Get-MigrationStatus -Verbose -Debug
            Get-MigrationStatus -Name s1 -Watch -Verbose -Debug
            Stop-SchemaMigration -Name s1 -Confirm:$false -Verbose -Debug -ErrorAction Continue
            Reset-SchemaMigration -Name s4 -Confirm:$false -Verbose -Debug
            Test-SchemaConformance -Container users -Require @{ a = 'number' } -Verbose -Debug
        } *>&1 | ForEach-Object { $_ | Format-List * -Force | Out-String; "$_" }
        $errors = $Error | ForEach-Object { $_ | Format-List * -Force | Out-String; $_.Exception.ToString(); $_.ErrorDetails | Out-String }
        $tracking = $script:Kit.ReadAllJson($script:Database, 'migrations', 'SELECT * FROM c')
        $context = Connect-CosmosMigration -Endpoint $script:Endpoint -Key $key -Database $script:Database -SkipCertificateCheck -PassThru
        $contextText = ($context | Format-List * -Force | Out-String) + ($context | ConvertTo-Json -Depth 3 -WarningAction SilentlyContinue)

        $everything = (@($streams) + @($errors) + @($tracking) + $contextText) -join "`n"
        $everything.Length | Should -BeGreaterThan 1000 -Because 'the scan covers real output'
        $everything | Should -Match 'DatabaseNotFound' -Because 'errors were captured'
        foreach ($secret in @($key, $connectionString, $key.Substring(0, 16), [Uri]::EscapeDataString($key).Substring(0, 16))) {
            $everything.Contains($secret) | Should -BeFalse -Because 'no secret may appear anywhere'
        }
    }

    It 'keep Microsoft Entra ID tokens out of every stream, error, $Error, the context and tracking documents' {
        # A token cannot create containers: the journal exists beforehand (the tracking container
        # was created by the key above).
        $script:Kit.CreateContainer($script:Database, 'migrations-journal', '/pk')
        $token = New-TestToken
        $expired = New-TestToken -Seconds -60
        $deniedId = [guid]::NewGuid().ToString()
        $denied = New-TestToken -ObjectId $deniedId
        $secure = ConvertTo-SecureString $token -AsPlainText -Force
        $DebugPreference = 'Continue'
        $Error.Clear()
        $streams = & {
            $context = Connect-CosmosMigration -AccessToken $secure -Endpoint $script:Endpoint -Database $script:Database -SkipCertificateCheck -PassThru -Verbose -Debug
            $context | Format-List * -Force | Out-String
            $context | ConvertTo-Json -Depth 3 -WarningAction SilentlyContinue
            Connect-CosmosMigration -AccessToken $token -Endpoint $script:Endpoint -Database $script:Database -SkipCertificateCheck -Verbose -Debug
            Start-SchemaMigration -Name t1 -Container users -Operation @{ AddField = 't'; Value = 1 } -Verbose -Debug
            Invoke-Backfill -Container users -Name t2 -ScriptBlock { param($doc) throw 'nope' } -Verbose -Debug -ErrorAction Continue
            Get-MigrationStatus -Verbose -Debug
            try { Connect-CosmosMigration -AccessToken $expired -Endpoint $script:Endpoint -Database $script:Database -SkipCertificateCheck -Verbose -Debug } catch { $_ }
            try { Connect-CosmosMigration -AccessToken $token -Endpoint $script:Endpoint -Database 'missing' -SkipCertificateCheck -Verbose -Debug } catch { $_ }
            Set-Faults @{ aadDenied = @($deniedId) }
            try { Connect-CosmosMigration -AccessToken $denied -Endpoint $script:Endpoint -Database $script:Database -SkipCertificateCheck -Verbose -Debug } catch { $_ }
            Set-Faults @{}
        } *>&1 | ForEach-Object { $_ | Format-List * -Force | Out-String; "$_" }
        $errors = $Error | ForEach-Object { $_ | Format-List * -Force | Out-String; $_.Exception.ToString(); $_.ErrorDetails | Out-String }
        $tracking = $script:Kit.ReadAllJson($script:Database, 'migrations', 'SELECT * FROM c')

        $everything = (@($streams) + @($errors) + @($tracking)) -join "`n"
        $everything | Should -Match 'AccessTokenExpired' -Because 'the expired token''s error was captured'
        $everything | Should -Match 'DataRoleMissing' -Because 'the missing role''s error was captured'
        $everything | Should -Match 'DatabaseNotFound'
        foreach ($secret in $token, $expired, $denied) {
            foreach ($part in @($secret) + @($secret.Split('.')[2]) + @([Uri]::EscapeDataString($secret).Substring(0, 60))) {
                $everything.Contains($part) | Should -BeFalse -Because 'no token, nor its signature, may appear anywhere'
            }
        }
    }
}
