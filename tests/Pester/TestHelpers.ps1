# Shared by every Pester file: imports the built module (from output/, as a user would) and the
# test-data kit, and names the server (COSMOS_ENDPOINT / COSMOS_KEY, set by build.ps1 -Task Test).
$script:Root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$script:ModulePath = if ($env:COSMOSMIGRATIONS_MODULE) { $env:COSMOSMIGRATIONS_MODULE } else { Join-Path $script:Root 'output/CosmosMigrations' }
Import-Module $script:ModulePath -Force
Add-Type -Path (Join-Path $script:Root 'output/testkit/CosmosMigrations.TestKit.dll')

$script:Endpoint = $env:COSMOS_ENDPOINT
$script:Key = $env:COSMOS_KEY
$script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1'
if (-not $script:Endpoint -or -not $script:Key) { throw 'COSMOS_ENDPOINT and COSMOS_KEY must be set (build.ps1 -Task Test sets them).' }
$script:Kit = [CosmosMigrations.TestKit.TestData]::new($script:Endpoint, $script:Key)

function New-TestDatabase {
    $name = 'p' + [guid]::NewGuid().ToString('N').Substring(0, 12)
    $script:Kit.CreateDatabase($name)
    return $name
}

function Connect-Test([string] $Database) {
    Connect-CosmosMigration -Endpoint $script:Endpoint -Key $script:Key -Database $Database -SkipCertificateCheck -Confirm:$false
}

function Get-HarnessStats { $script:Kit.Stats() | ConvertFrom-Json }

# Requests the harness answered, by "METHOD STATUS" (e.g. 'PATCH 200'), optionally for one container.
function Get-MethodCount($Stats, [string] $Key, [string] $Container) {
    $value = if ($Container) { $Stats.byContainer.PSObject.Properties["$Container $Key"] } else { $Stats.byMethod.PSObject.Properties[$Key] }
    if ($value) { [int]$value.Value } else { 0 }
}

function Set-Faults([hashtable] $Faults) { $null = $script:Kit.SetFaults(($Faults | ConvertTo-Json -Compress)) }
