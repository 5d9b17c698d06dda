<#
.SYNOPSIS
    The main job on a fresh machine: seeds sample users on the local Cosmos DB server, runs the
    sample migrations with progress, and shows their tracking state.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Demo
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [string] $Key = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==',
    [int] $Users = 3000
)

$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Add-Type -Path (Join-Path $PSScriptRoot '../output/testkit/CosmosMigrations.TestKit.dll')

Write-Host "`n== Sample data in the seed's old shape: $Users users and $Users posts, 40 partition keys" -ForegroundColor Cyan
$kit = [CosmosMigrations.TestKit.TestData]::new($Endpoint, $Key)
$kit.DeleteDatabase('demo')
$null = $kit.SeedSampleDatabase('demo', $Users, 40)
$kit.ReadAllJson('demo', 'users', "SELECT c.id, c.pk, c.name, c.email, c.userName FROM c WHERE c.id = 'd42'") | Write-Host
$kit.ReadAllJson('demo', 'posts', "SELECT c.id, c.status, c.publishedAt, c.priority, c.legacyField FROM c WHERE c.id = 'd42'") | Write-Host

Write-Host "`n== Connect-CosmosMigration" -ForegroundColor Cyan
Connect-CosmosMigration -Endpoint $Endpoint -Key $Key -Database demo -SkipCertificateCheck -PassThru | Format-Table | Out-String | Write-Host

$migrations = Join-Path $PSScriptRoot 'migrations'
Write-Host "== Get-MigrationStatus -Path examples/migrations (before)" -ForegroundColor Cyan
Get-MigrationStatus -Path $migrations | Format-Table Name, Container, Status, Description | Out-String | Write-Host

Write-Host "== Start-SchemaMigration -Path examples/migrations -WhatIf (a dry run writes nothing)" -ForegroundColor Cyan
$preview = Start-SchemaMigration -Path $migrations -WhatIf
$preview | Format-Table | Out-String | Write-Host
Write-Host "Sample: $($preview[0].Samples[0].Before)`n     -> $($preview[0].Samples[0].After)`n"

Write-Host "== Start-SchemaMigration -Path examples/migrations" -ForegroundColor Cyan
Start-SchemaMigration -Path $migrations | Format-Table | Out-String | Write-Host

Write-Host "== The same again: completed migrations are skipped" -ForegroundColor Cyan
Start-SchemaMigration -Path $migrations -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like "*Already completed*" } | ForEach-Object { Write-Host "VERBOSE: $($_.Message)" }

Write-Host "`n== Get-MigrationStatus" -ForegroundColor Cyan
Get-MigrationStatus | Format-Table | Out-String | Write-Host
$kit.ReadAllJson('demo', 'users', "SELECT * FROM c WHERE c.id = 'd42'") | Write-Host
$kit.ReadAllJson('demo', 'posts', "SELECT * FROM c WHERE c.id = 'd42'") | Write-Host

Write-Host "`n== Test-SchemaConformance" -ForegroundColor Cyan
$conformance = @(
    Test-SchemaConformance -Container users -Require ([ordered]@{ avatarUrl = 'string'; createdAt = 'number'; updatedAt = 'number'; displayName = 'string' })
    Test-SchemaConformance -Container posts -Require @{ priorityLevel = 'number' }
)
$conformance | Format-Table | Out-String | Write-Host
Write-Host "posts indexing policy: $($kit.IndexingPolicyJson('demo', 'posts'))"
$failed = @(Get-MigrationStatus | Where-Object Status -NE 'completed')
if ($failed.Count -or ($conformance | Where-Object NonConforming -GT 0)) { exit 1 }
