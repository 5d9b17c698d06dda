# Keyless connections end to end: -AccessToken and -EntraId against the local server, which reads
# Microsoft Entra ID tokens as the service does (tests/LocalCosmos/auth.js). The -EntraId cases run
# in a fresh, non-interactive pwsh whose environment holds only the sign-in under test: the stand-in
# `az` or Az.Accounts (SignInStandIns.ps1) first on PATH / PSModulePath, no AZURE_* or managed
# identity variables. The requests' authorization type is checked on the wire (the server's stats).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    . (Join-Path $PSScriptRoot 'SignInStandIns.ps1')
    $script:Database = New-TestDatabase
    # A token cannot create containers: the tracking and journal containers exist beforehand, as
    # an administrator (or the key) creates them once.
    $script:Kit.CreateContainer($script:Database, 'migrations', '/id')
    $script:Kit.CreateContainer($script:Database, 'migrations-journal', '/pk')

    # A sign-in the child refused with $ErrorId, an authentication error, leaving no context
    # (Invoke-SignInChild's result).
    function Assert-SignInRefused($Result, [string] $ErrorId) {
        $Result.connected | Should -BeFalse
        $Result.errorId | Should -BeLike "$ErrorId,*"
        $Result.category | Should -Be 'AuthenticationError'
        $Result.afterwards | Should -BeLike 'NotConnected,*'
    }

    function Get-AuthCount([string] $Container, [string] $Type) {
        $value = (Get-HarnessStats).byContainerAuth.PSObject.Properties["$Container $Type"]
        if ($value) { [int] $value.Value } else { 0 }
    }

    # Runs Connect-CosmosMigration (and, when $Field is given, a migration adding it) in a fresh
    # non-interactive pwsh with exactly $Environment changed; returns what happened, every stream's
    # text, and whether a context was left behind.
    function Invoke-SignInChild([string] $Connect, [hashtable] $Environment = @{}, [string] $Container, [string] $Field, [string] $Database = $script:Database) {
        $log = Join-Path $TestDrive "signin-$([guid]::NewGuid().ToString('N')).log"
        $body = @'
$Values = Get-Content "$log.values.json" -Raw | ConvertFrom-Json
$result = [ordered]@{ verbose = @() }
$watch = [System.Diagnostics.Stopwatch]::StartNew()
$DebugPreference = 'Continue'
$text = & {
    try {
        $context = & ([scriptblock]::Create($Values.Connect + ' -Endpoint $Values.Endpoint -Database $Values.Database -SkipCertificateCheck -PassThru -Verbose -Debug -ErrorAction Stop'))
        $result.seconds = $watch.Elapsed.TotalSeconds
        $result.connected = $true
        $result.authentication = $context.AuthenticationType
        $result.source = $context.SignInSource
        $result.principal = $context.Principal
        $context | Format-List * -Force | Out-String
        $context | ConvertTo-Json -Depth 2 -WarningAction SilentlyContinue
        if ($Values.Field) {
            $status = Start-SchemaMigration -Name "aad-$($Values.Field)" -Container $Values.Container -Operation @{ AddField = $Values.Field; Value = 'keyless' } -Verbose -Debug
            $result.status = $status.Status
            $result.processed = $status.Processed
            $status | Format-List * -Force | Out-String
        }
    }
    catch {
        $result.seconds = $watch.Elapsed.TotalSeconds
        $result.connected = $false
        $result.errorId = $_.FullyQualifiedErrorId
        $result.category = "$($_.CategoryInfo.Category)"
        $result.message = $_.Exception.Message
        $result.action = $_.ErrorDetails.RecommendedAction
        $_ | Format-List * -Force | Out-String
        $_.Exception.ToString()
    }
} *>&1 | ForEach-Object {
    if ($_ -is [System.Management.Automation.VerboseRecord]) { $result.verbose += $_.Message }
    $_ | Format-List * -Force | Out-String
    "$_"
}
try { Get-MigrationStatus -ErrorAction Stop | Out-Null; $result.afterwards = 'connected' }
catch { $result.afterwards = "$($_.FullyQualifiedErrorId)" }
$result.text = (@($text) + @($Error | ForEach-Object { $_ | Format-List * -Force | Out-String; $_.Exception.ToString() })) -join "`n"
Set-RunnerResult $result
'@
        @{ Endpoint = $script:Endpoint; Database = $Database; Connect = $Connect; Container = $Container; Field = $Field } |
            ConvertTo-Json | Set-Content "$log.values.json"
        $childEnvironment = @{ COSMOS_KEY = $null; COSMOS_CONNECTION_STRING = $null; COSMOS_ENDPOINT = $null }
        foreach ($name in $script:IdentityVariables) { $childEnvironment[$name] = $null }
        foreach ($name in $Environment.Keys) { $childEnvironment[$name] = $Environment[$name] }
        $process = Start-Runner $body $log -NoConnect -Environment $childEnvironment
        Wait-RunnerResult $process $log -Seconds 120
    }

    # PATH for a child that must find no `az` and no `pwsh` but what a test puts first.
    $script:BarePath = '/usr/bin:/bin'
}

AfterAll { Remove-TestDatabase }

Describe '-AccessToken' {
    It 'connects and runs a migration with the token, AAD-type authorization on the wire' {
        $script:Kit.CreateContainer($script:Database, 'tokenusers', '/pk')
        $script:Kit.SeedUsers($script:Database, 'tokenusers', 30, 3)
        $token = New-TestToken
        $aadBefore = Get-AuthCount tokenusers aad
        $keyBefore = Get-AuthCount tokenusers master

        $context = Connect-CosmosMigration -AccessToken $token -Endpoint $script:Endpoint -Database $script:Database -SkipCertificateCheck -PassThru
        $context.AuthenticationType | Should -Be 'AccessToken'
        $context.Principal | Should -Match '^admin@contoso\.com \(object id [0-9a-f-]{36}\)$'
        $status = Start-SchemaMigration -Context $context -Name token-add -Container tokenusers -Operation @{ AddField = 'tier'; Value = 'free' }
        $status.Status | Should -Be 'completed'
        $status.Processed | Should -Be 30
        (Get-AuthCount tokenusers aad) - $aadBefore | Should -BeGreaterThan 30 -Because 'every read and patch of the run carried the token'
        (Get-AuthCount tokenusers master) - $keyBefore | Should -Be 0 -Because 'no request of the run was signed with a key'
        $script:Kit.Count($script:Database, 'tokenusers', 'c.tier = "free"') | Should -Be 30
        (Get-AuthCount migrations aad) | Should -BeGreaterThan 0 -Because 'tracking went with the token too'
    }

    It 'fails an expired token with AccessTokenExpired before any request, leaving no context' {
        $result = Invoke-SignInChild ('Connect-CosmosMigration -AccessToken ''{0}''' -f (New-TestToken -Seconds -120))
        Assert-SignInRefused $result 'AccessTokenExpired'
        $result.message | Should -Match 'expired at \d{4}-\d\d-\d\d'
        $result.action | Should -Match 'Get-AzAccessToken'
    }

    It 'is refused by the server once expired: 401, as the service answers' {
        $token = New-TestToken -Seconds -5
        $authorization = [Uri]::EscapeDataString("type=aad&ver=1.0&sig=$token")
        $response = Invoke-WebRequest -Uri "$($script:Endpoint)dbs/$($script:Database)" -Headers @{ authorization = $authorization; 'x-ms-version' = '2018-12-31' } -SkipCertificateCheck -SkipHttpErrorCheck
        $response.StatusCode | Should -Be 401
        $response.Content | Should -Match 'expired'
    }
}

Describe 'A principal without a data-plane role' {
    AfterEach { Set-Faults @{} }

    It 'fails at connect with DataRoleMissing naming the role, and leaves no context' {
        $objectId = [guid]::NewGuid().ToString()
        Set-Faults @{ aadDenied = @($objectId) }
        $token = New-TestToken -ObjectId $objectId
        $result = Invoke-SignInChild "Connect-CosmosMigration -AccessToken '$token'"
        Assert-SignInRefused $result 'DataRoleMissing'
        $result.message | Should -Match 'Cosmos DB Built-in Data Contributor'
        $result.message | Should -Match '403/5301'
        $result.action | Should -Match '00000000-0000-0000-0000-000000000002'
        $result.action | Should -Match "--principal-id $objectId"
        $result.text.Contains($token) | Should -BeFalse
    }

    It 'fails at connect when the role does not allow writing documents (read allowed, the probe delete refused)' {
        # The service's own 403/5301 on the probe's delete: the module names the write it could not do.
        $objectId = [guid]::NewGuid().ToString()
        Set-Faults @{ aadDenied = @($objectId); methods = @('DELETE') }
        $token = New-TestToken -ObjectId $objectId
        $result = Invoke-SignInChild "Connect-CosmosMigration -AccessToken '$token'"
        $result.errorId | Should -BeLike 'DataRoleMissing,*'
        $result.message | Should -Match 'write documents of the tracking container'
        $result.afterwards | Should -BeLike 'NotConnected,*'
    }

    It 'cannot create the tracking container with a token: TrackingContainerMissing says how to create it' {
        $database = New-TestDatabase
        try {
            $result = Invoke-SignInChild "Connect-CosmosMigration -AccessToken '$(New-TestToken)'" -Database $database
            $result.errorId | Should -BeLike 'TrackingContainerMissing,*'
            $result.action | Should -Match 'az cosmosdb sql container create .*--name migrations --partition-key-path /id'
            $result.afterwards | Should -BeLike 'NotConnected,*'
        }
        finally { $script:Kit.DeleteDatabase($database) }
    }
}

Describe '-EntraId' {
    It 'signs in through the Azure CLI (a stand-in az first on PATH) and runs a migration' {
        $script:Kit.CreateContainer($script:Database, 'cliusers', '/pk')
        $script:Kit.SeedUsers($script:Database, 'cliusers', 20, 2)
        $token = New-TestToken -Name 'cli@contoso.com'
        $folder = Join-Path $TestDrive 'az'
        $calls = New-AzureCliStandIn $folder $token
        $aadBefore = Get-AuthCount cliusers aad

        $result = Invoke-SignInChild 'Connect-CosmosMigration -EntraId -TimeoutSec 30' -Environment @{ PATH = "$($folder):$($script:BarePath)" } -Container cliusers -Field viaCli
        $result.connected | Should -BeTrue -Because $result.text
        $result.authentication | Should -Be 'EntraId'
        $result.source | Should -Be 'the Azure CLI'
        $result.principal | Should -Match '^cli@contoso\.com'
        $result.verbose -join "`n" | Should -Match 'Signed in with the Azure CLI \(AzureCliCredential\) as cli@contoso\.com'
        $result.status | Should -Be 'completed'
        $result.processed | Should -Be 20
        $script:Kit.Count($script:Database, 'cliusers', 'c.viaCli = "keyless"') | Should -Be 20

        # The CLI was asked as Azure.Identity asks it, for the account's own audience.
        $recorded = @(Get-Content $calls)
        $recorded.Count | Should -BeGreaterThan 0
        $recorded[0] | Should -Be 'account get-access-token --output json --resource https://localhost'
        (Get-AuthCount cliusers aad) - $aadBefore | Should -BeGreaterThan 20
        $result.text.Contains($token) | Should -BeFalse -Because 'the token never appears in any stream'
        $result.text.Contains($token.Split('.')[2]) | Should -BeFalse
    }

    It 'signs in through the Az PowerShell context (a stand-in Az.Accounts on PSModulePath) and runs a migration' {
        $script:Kit.CreateContainer($script:Database, 'azpsusers', '/pk')
        $script:Kit.SeedUsers($script:Database, 'azpsusers', 20, 2)
        $token = New-TestToken -Name 'azps@contoso.com'
        $standIn = New-AzPowerShellStandIn (Join-Path $TestDrive 'azps') $token

        $result = Invoke-SignInChild 'Connect-CosmosMigration -EntraId -TimeoutSec 60' -Container azpsusers -Field viaAzPs -Environment @{
            PATH = "$($standIn.Bin):$($script:BarePath)"; PSModulePath = $standIn.ModulePath
        }
        $result.connected | Should -BeTrue -Because $result.text
        $result.source | Should -Be 'the Az PowerShell context'
        $result.verbose -join "`n" | Should -Match 'Signed in with the Az PowerShell context \(AzurePowerShellCredential\) as azps@contoso\.com'
        $result.status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'azpsusers', 'c.viaAzPs = "keyless"') | Should -Be 20
        @(Get-Content $standIn.Log)[0] | Should -Be 'ResourceUrl=https://localhost TenantId='
        $result.text.Contains($token) | Should -BeFalse
    }

    It 'passes -Tenant to the source' {
        $token = New-TestToken
        $folder = Join-Path $TestDrive 'aztenant'
        $calls = New-AzureCliStandIn $folder $token
        $result = Invoke-SignInChild 'Connect-CosmosMigration -EntraId -Tenant 72f988bf-0000-0000-0000-000000000000' -Environment @{ PATH = "$($folder):$($script:BarePath)" }
        $result.connected | Should -BeTrue -Because $result.text
        @(Get-Content $calls)[0] | Should -Be 'account get-access-token --output json --resource https://localhost --tenant 72f988bf-0000-0000-0000-000000000000'
    }

    It 'with nothing signed in, fails fast with one EntraIdUnavailable error listing every source and its fix, leaving no context' {
        $result = Invoke-SignInChild 'Connect-CosmosMigration -EntraId -TimeoutSec 20' -Environment @{ PATH = $script:BarePath }
        Assert-SignInRefused $result 'EntraIdUnavailable'
        $result.seconds | Should -BeLessThan 20 -Because 'a machine without a managed identity endpoint must not hang'
        $lines = @($result.message -split "`n" | Where-Object { $_ -match '^\s+\d\. ' })
        $lines.Count | Should -Be 6
        $lines[0] | Should -Match "1\. The environment's service principal \(EnvironmentCredential\): .+ Fix: set AZURE_TENANT_ID"
        $lines[1] | Should -Match "2\. The environment's workload identity \(WorkloadIdentityCredential\): .+ Fix: set .*AZURE_FEDERATED_TOKEN_FILE"
        $lines[2] | Should -Match '3\. The Az PowerShell context \(AzurePowerShellCredential\): .+ Fix: run Connect-AzAccount'
        $lines[3] | Should -Match '4\. The Azure CLI \(AzureCliCredential\): .+ Fix: run az login'
        $lines[4] | Should -Match '5\. A managed identity \(ManagedIdentityCredential\): .+ Fix: run where a managed identity is assigned'
        $lines[5] | Should -Match '6\. An interactive sign-in .*: the session is not interactive.+ Fix: run Connect-CosmosMigration -EntraId'
        $result.action | Should -Match 'Cosmos DB Built-in Data Contributor'
    }

    It 'fails at connect with DataRoleMissing when the signed-in identity has no data-plane role' {
        $objectId = [guid]::NewGuid().ToString()
        Set-Faults @{ aadDenied = @($objectId) }
        try {
            $folder = Join-Path $TestDrive 'aznorole'
            $null = New-AzureCliStandIn $folder (New-TestToken -ObjectId $objectId)
            $result = Invoke-SignInChild 'Connect-CosmosMigration -EntraId' -Environment @{ PATH = "$($folder):$($script:BarePath)" }
            $result.errorId | Should -BeLike 'DataRoleMissing,*'
            $result.message | Should -Match 'Cosmos DB Built-in Data Contributor'
            $result.afterwards | Should -BeLike 'NotConnected,*'
        }
        finally { Set-Faults @{} }
    }
}
