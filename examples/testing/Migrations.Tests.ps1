# A team's test of its migration folder: valid files, a run on sample data in the old shape,
# conformance afterwards, and a second run that changes nothing. Copy it beside your migrations.
BeforeAll {
    $repo = Resolve-Path (Join-Path $PSScriptRoot '../..')
    $migrations = Join-Path $repo 'examples/migrations'
    Import-Module (Join-Path $repo 'output/CosmosMigrations') -Force
    Add-Type -Path (Join-Path $repo 'output/testkit/CosmosMigrations.TestKit.dll')

    if (-not ($env:COSMOS_ENDPOINT -and $env:COSMOS_KEY)) {
        # No endpoint named: start this repository's local Cosmos DB server.
        & dotnet pwsh -NoProfile (Join-Path $repo 'build.ps1') -Task StartLocalCosmos | Out-Host
        $state = Get-Content (Join-Path $repo 'output/localcosmos.json') -Raw | ConvertFrom-Json
        $env:COSMOS_ENDPOINT = $state.endpoint
        $env:COSMOS_KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='
    }

    # A fresh database with sample documents in the old shape.
    $database = 'migtest' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    $data = [CosmosMigrations.TestKit.TestData]::new($env:COSMOS_ENDPOINT, $env:COSMOS_KEY)
    $data.CreateDatabase($database)
    $data.CreateContainer($database, 'users', '/pk')
    $data.CreateContainer($database, 'posts', '/pk')
    $data.SeedUsers($database, 'users', 500, 10)
    $data.SeedPosts($database, 'posts', 500, 10)
    $local = ([Uri]$env:COSMOS_ENDPOINT).IsLoopback
    Connect-CosmosMigration -Endpoint $env:COSMOS_ENDPOINT -Key $env:COSMOS_KEY -Database $database -SkipCertificateCheck:$local
}

AfterAll { $data.DeleteDatabase($database) }

Describe 'The migrations folder' {
    It 'holds only valid migration files' {
        Test-MigrationFile $migrations | Where-Object { -not $_.Valid } | Should -BeNullOrEmpty
    }

    It 'runs to completion on sample data' {
        $results = Start-SchemaMigration -Path $migrations
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
        Start-SchemaMigration -Path $migrations -Force | Where-Object Processed -GT 0 | Should -BeNullOrEmpty
    }
}
