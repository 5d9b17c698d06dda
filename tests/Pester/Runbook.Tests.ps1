# The runbook example, end to end in a child pwsh as Azure Automation would run it.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Database = New-TestDatabase
    $script:Kit.CreateContainer($script:Database, 'users', '/pk')
    $script:Kit.SeedUsers($script:Database, 'users', 3000, 10)
    $script:Runbook = Join-Path $script:Root 'examples/runbook/Invoke-MigrationRunbook.ps1'

    function Invoke-Runbook([string] $Folder, [string] $TimeSlice, [int] $BatchSize = 100, [double] $MaxFailureRate = 0) {
        $env:COSMOS_CONNECTION_STRING = "AccountEndpoint=$($script:Endpoint);AccountKey=$($script:Key);DisableServerCertificateValidation=True"
        try {
            $output = Invoke-Pwsh -File $script:Runbook -MigrationsPath $Folder -Database $script:Database -TimeSlice $TimeSlice -BatchSize $BatchSize -MaxFailureRate $MaxFailureRate -ModulePath $script:ModulePath
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Lines = @($output) }
        }
        finally { Remove-Item env:COSMOS_CONNECTION_STRING }
    }
}

AfterAll { Remove-TestDatabase }

Describe 'The runbook' {
    It 'runs within its time slice, reports JSON, and a second run finishes' {
        $folder = Join-Path $TestDrive 'ok'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder '0001_avatar.psd1') "@{ Name = 'rb-avatar'; Container = 'users'; Operations = @( @{ AddField = 'avatarUrl'; Template = 'a/{name:uri}' } ) }"
        Set-Content (Join-Path $folder '0002_flag.psd1') "@{ Name = 'rb-flag'; Container = 'users'; Operations = @( @{ AddField = 'flag'; Value = `$true } ) }"

        $cut = Invoke-Runbook $folder '00:00:00.5' 10
        $cut.ExitCode | Should -Be 0 -Because "a time slice is not a failure: $($cut.Lines -join "`n")"
        $first = $cut.Lines | Where-Object { $_ -like '{"name":"rb-avatar"*' } | ConvertFrom-Json
        $first.status | Should -Be 'cancelled'
        $first.stopReason | Should -Be 'MaxDuration'
        ($cut.Lines | Where-Object { $_ -like '{"summary"*' } | ConvertFrom-Json).remaining | Should -Be 2

        $done = Invoke-Runbook $folder '00:10:00'
        $done.ExitCode | Should -Be 0
        $statuses = $done.Lines | Where-Object { $_ -like '{"name"*' } | ConvertFrom-Json
        @($statuses.status) | Should -Be @('completed', 'completed')
        $statuses[0].outcome | Should -Be 'Resumed'
        ($done.Lines | Where-Object { $_ -like '{"summary"*' } | ConvertFrom-Json).remaining | Should -Be 0
        $script:Kit.Count($script:Database, 'users', 'IS_DEFINED(c.avatarUrl) AND c.flag = true') | Should -Be 3000
    }

    It 'exits non-zero when a migration fails' {
        $folder = Join-Path $TestDrive 'bad'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder '0001_require.psd1') "@{ Name = 'rb-require'; Container = 'users'; Operations = @( @{ RequireField = 'nothere' } ) }"
        $result = Invoke-Runbook $folder '00:10:00'
        $result.ExitCode | Should -Be 1
        ($result.Lines | Where-Object { $_ -like '{"name":"rb-require"*' } | ConvertFrom-Json).status | Should -Be 'failed'
    }

    It 'exits 2 when a migration completed with failures, with the failures by class in its JSON' {
        $folder = Join-Path $TestDrive 'some-bad'
        New-Item -ItemType Directory $folder | Out-Null
        Set-Content (Join-Path $folder '0001_convert.psd1') "@{ Name = 'rb-convert'; Container = 'users'; Operations = @( @{ Transform = 'convert.ps1' } ) }"
        # One user in a hundred cannot be converted.
        Set-Content (Join-Path $folder 'convert.ps1') 'param($doc) if ([int]$doc.id.Substring(1) % 100 -eq 0) { throw "cannot convert $($doc.id)" }; if ($doc.converted) { return $null }; $doc.converted = $true; $doc'
        $result = Invoke-Runbook $folder '00:10:00' -MaxFailureRate 0.05
        $result.ExitCode | Should -Be 2 -Because ($result.Lines -join "`n")
        $line = $result.Lines | Where-Object { $_ -like '{"name":"rb-convert"*' } | ConvertFrom-Json
        $line.status | Should -Be 'completedWithFailures'
        $line.failed | Should -Be 30
        $line.failedByClass.transform | Should -Be 30
        $summary = $result.Lines | Where-Object { $_ -like '{"summary"*' } | ConvertFrom-Json
        $summary.completedWithFailures | Should -Be 1
        $summary.failed | Should -Be 0
    }
}
