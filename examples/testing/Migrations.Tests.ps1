# A team's test of its migration folder: valid files, a run on sample data in the old shape,
# conformance afterwards, and a second run that changes nothing. Copy it beside your migrations.
#
# It needs only the module and a connection made before Invoke-Pester, to a test database holding
# sample documents in the old shape (never production): the tests use the session's connection.
#   Connect-CosmosMigration -Emulator -Database demo      # the local emulator or test server
#   Invoke-Pester ./Migrations.Tests.ps1
# -MigrationsPath names the folder (default: 'migrations' beside this file, or '../migrations').
param([string] $MigrationsPath)

BeforeAll {
    if (-not (Get-Module CosmosMigrations)) { Import-Module CosmosMigrations -ErrorAction Stop }
    $script:Migrations = if ($MigrationsPath) { $MigrationsPath } else {
        @('migrations', '../migrations') | ForEach-Object { Join-Path $PSScriptRoot $_ } | Where-Object { Test-Path $_ } | Select-Object -First 1
    }
    if (-not $script:Migrations) { throw "No migrations folder beside ${PSScriptRoot}: pass -MigrationsPath." }
    # Fails here, clearly, when the session is not connected.
    $null = Get-MigrationStatus -ErrorAction Stop
}

Describe 'The migrations folder' {
    It 'holds only valid migration files' {
        Test-MigrationFile $script:Migrations | Where-Object { -not $_.Valid } | Should -BeNullOrEmpty
    }

    It 'runs to completion on sample data' {
        $results = Start-SchemaMigration -Path $script:Migrations -Confirm:$false
        $results | Should -Not -BeNullOrEmpty
        $results | Where-Object Status -NE 'completed' | Should -BeNullOrEmpty
    }

    It 'leaves every document with the required fields' {
        $checks = @(
            Test-SchemaConformance -Container users -Require @{ avatarUrl = 'string'; createdAt = 'number'; displayName = 'string' }
            Test-SchemaConformance -Container posts -Require @{ priorityLevel = 'number' }
        )
        $checks | Where-Object NonConforming -GT 0 | Should -BeNullOrEmpty
    }

    It 'changes nothing when run again' {
        Start-SchemaMigration -Path $script:Migrations -Force -Confirm:$false | Where-Object Processed -GT 0 | Should -BeNullOrEmpty
    }
}
