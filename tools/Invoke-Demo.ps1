<#
.SYNOPSIS
    build.ps1 -Task Demo: starts the local server, seeds sample data, runs the sample migrations
    with progress (examples/demo.ps1) and shows Get-MigrationStatus on the built module; the server
    keeps running, and the task says so, how to connect to it and how to stop it.
#>
[CmdletBinding()]
param(
    [int] $Partitions = 4,
    [string] $Configuration = 'Release'
)

. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module (Join-Path $PSScriptRoot 'LocalCosmos.psm1')

$state = Start-LocalCosmos -Partitions $Partitions -Configuration $Configuration
& dotnet pwsh -NoProfile -File (Join-Path $Root 'examples/demo.ps1') -ModulePath $ModuleOut -Endpoint $state.endpoint
$demoExit = $LASTEXITCODE
Write-Host ''
Write-Host "The local Cosmos DB server is still running at $($state.endpoint) with the demo's data."
Write-LocalCosmosNote $state
exit $demoExit
