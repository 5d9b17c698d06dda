# The prompt: completion, -Watch, static validation, and objects that serialise cleanly.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
    New-SeededContainer 'customers' 600 6
    $script:Kit.CreateContainer($script:Database, 'carts', '/pk')
    $null = Start-SchemaMigration -Name '0001_first' -Container customers -Operation @{ AddField = 'a'; Value = 1 }
    $null = Start-SchemaMigration -Name '0002_second' -Container customers -Operation @{ AddField = 'b'; Value = 2 }
}

AfterAll { Remove-TestDatabase }

Describe 'Tab completion' {
    It 'completes migration names' {
        $line = 'Stop-SchemaMigration -Name 000'
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('0001_first', '0002_second')
    }

    It 'completes container names, without the tracking container' {
        $line = 'Invoke-Backfill -Container c'
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be @('carts', 'customers')
        $line = 'Test-SchemaConformance -Container '
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Not -Contain 'migrations'
    }
}

Describe 'Get-MigrationStatus -Watch' {
    It 'returns once the watched migration stops running' {
        $job = Start-ConnectedJob 'Invoke-Backfill -Container customers -Name watched -Set @{ w = 1 } -BatchSize 10 -MaxDegreeOfParallelism 1'
        # Watched while it runs (a backfill that already finished returns at once as well).
        $null = Wait-Until { Get-MigrationStatus -Name watched -Status running } 30 -Every 20
        $final = Get-MigrationStatus -Name watched -Watch -IntervalSec 1
        $final.Status | Should -Be 'completed'
        $final.Processed | Should -Be 600
        $job | Wait-Job | Remove-Job
    }
}

Describe 'Test-MigrationFile' {
    It 'reports each file, with problems, without a connection' {
        $folder = Join-Path $TestDrive 'files'
        New-Item -ItemType Directory -Path $folder, (Join-Path $folder 'transforms') | Out-Null
        Set-Content (Join-Path $folder '0001_ok.psd1') "@{ Name = 'ok'; Container = 'users'; Operations = @( @{ AddField = 'a'; Value = 1 }, @{ Transform = 'transforms/t.ps1' } ) }"
        Set-Content (Join-Path $folder 'transforms/t.ps1') 'param($doc) $doc'
        Set-Content (Join-Path $folder '0002_bad.psd1') "@{ Name = 'bad'; Container = 'users'; Operations = @( @{ AddFeild = 'a' } ) }"
        Set-Content (Join-Path $folder '0003_dup.psd1') "@{ Name = 'ok'; Container = 'users'; Operations = @( @{ RemoveField = 'a' } ) }"
        Set-Content (Join-Path $folder '0004_script.psd1') "@{ Name = 'script'; Container = 'users'; Operations = @( @{ Transform = 'transforms/broken.ps1' } ) }"
        Set-Content (Join-Path $folder 'transforms/broken.ps1') 'param($doc) { $doc'

        $results = Test-MigrationFile $folder
        $results.Count | Should -Be 4
        $results[0].Valid | Should -BeFalse -Because 'its name is used twice'
        $results[0].Problems | Should -Match 'used by 2 files'
        $results[1].Problems | Should -Match 'Known operations'
        $results[2].Problems | Should -Match 'used by 2 files'
        $results[3].Problems | Should -Match 'does not parse'
        (Test-MigrationFile (Join-Path $script:Root 'examples/migrations') | Where-Object { -not $_.Valid }) | Should -BeNullOrEmpty
    }
}

Describe 'Output objects' {
    It 'serialise cleanly with ConvertTo-Json' {
        $json = Get-MigrationStatus -Name 0001_first | ConvertTo-Json -Depth 4 -WarningAction Stop
        $back = $json | ConvertFrom-Json
        $back.Name | Should -Be '0001_first'
        $back.Status | Should -Be 'completed'
        $back.Processed | Should -Be 600
        $json | Should -Not -Match 'PSComputerName|RunspaceId'
    }

    It 'have table views' {
        (Get-MigrationStatus | Format-Table | Out-String) | Should -Match 'Name\s+Container\s+Status\s+Processed'
        (Test-SchemaConformance customers @{ a = 'number' } | Format-Table | Out-String) | Should -Match 'NonConforming'
    }
}
