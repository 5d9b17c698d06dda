@{
    RootModule           = 'CosmosMigrations.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '6f0c5c52-8d0e-4b7e-9a43-3f1f3b7c2d11'
    Author               = 'CosmosMigrations'
    CompanyName          = 'CosmosMigrations'
    Copyright            = '(c) CosmosMigrations. MIT License.'
    Description          = 'Safe, tracked, resumable schema migrations for Azure Cosmos DB (NoSQL API) containers: add, backfill, rename, convert and remove fields with zero downtime.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('CosmosMigrations.Format.ps1xml')
    CmdletsToExport      = @(
        'Connect-CosmosMigration'
        'Start-SchemaMigration'
        'Invoke-Backfill'
        'Get-MigrationStatus'
        'Get-MigrationFailure'
        'Stop-SchemaMigration'
        'Reset-SchemaMigration'
        'Undo-SchemaMigration'
        'Test-SchemaConformance'
        'Test-ContainerMove'
        'Start-ContainerMove'
        'Complete-ContainerMove'
        'Test-MigrationFile'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    # Built for net8.0, PowerShell 7.4's runtime. Tested: every test on PowerShell 7.6.9 (.NET 10)
    # on Linux x64; the Core engine through this module's load context on .NET 8 (a host run on
    # the Microsoft.NETCore.App.Runtime 8.0 pack). Not tested: PowerShell 7.4 itself (not
    # available to the test machine), Windows, macOS. The README says the same.
    # ProjectUri, LicenseUri and HelpInfoUri are left out until the module has real addresses: the
    # licence (MIT) is the LICENSE file in the module's folder.
    PrivateData          = @{
        PSData = @{
            Tags = @('CosmosDB', 'Azure', 'AzureCosmosDB', 'NoSQL', 'Migration', 'SchemaMigration', 'Backfill', 'DevOps',
                'PSEdition_Core', 'Windows', 'Linux', 'MacOS')
            # ReleaseNotes: the build copies the version's section of CHANGELOG.md here.
        }
    }
}
