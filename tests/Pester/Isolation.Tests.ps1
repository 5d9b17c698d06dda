# Beside Az: the module's dependencies live in its own AssemblyLoadContext, so the older Azure.Core,
# Azure.Identity, MSAL and Newtonsoft.Json that Az.Accounts 2.x loads into PowerShell's default
# context, before or after the module, do not matter. Every case runs in a fresh pwsh (what is
# loaded into a process cannot be unloaded); this process only seeds the data and checks it.
BeforeDiscovery {
    $script:Cases = foreach ($order in 'AzFirst', 'ModuleFirst') {
        foreach ($mode in 'Key', 'ConnectionString', 'Emulator', 'Identity', 'EntraId', 'AccessToken') { @{ Order = $order; Mode = $mode } }
    }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    . (Join-Path $PSScriptRoot 'SignInStandIns.ps1')

    # What Az.Accounts 2.x ships, restored pinned from NuGet by tests/CosmosMigrations.Core.Tests
    # (PackageDownload), in the order a loader would load them.
    $packages = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    $script:AzAssemblies = @(
        'azure.core/1.36.0/lib/net6.0/Azure.Core.dll'
        'microsoft.identitymodel.abstractions/6.33.0/lib/net6.0/Microsoft.IdentityModel.Abstractions.dll'
        'microsoft.identity.client/4.55.0/lib/net6.0/Microsoft.Identity.Client.dll'
        'microsoft.identity.client.extensions.msal/2.31.0/lib/netcoreapp3.1/Microsoft.Identity.Client.Extensions.Msal.dll'
        'azure.identity/1.10.2/lib/netstandard2.0/Azure.Identity.dll'
        'system.memory.data/1.0.2/lib/netstandard2.0/System.Memory.Data.dll'
        'microsoft.bcl.asyncinterfaces/1.1.1/lib/netstandard2.1/Microsoft.Bcl.AsyncInterfaces.dll'
        'newtonsoft.json/12.0.3/lib/netstandard2.0/Newtonsoft.Json.dll'
    ) | ForEach-Object { Join-Path $packages $_ }
    foreach ($path in $script:AzAssemblies) {
        if (-not (Test-Path $path)) { throw "$path is missing: run 'dotnet restore tests/CosmosMigrations.Core.Tests' (build.ps1 -Task Test does)." }
    }
    $script:BinVersions = @{}
    foreach ($name in 'Azure.Core', 'Azure.Identity', 'Microsoft.Identity.Client', 'Newtonsoft.Json') {
        $script:BinVersions[$name] = "$([System.Reflection.AssemblyName]::GetAssemblyName((Join-Path $script:ModulePath "bin/$name.dll")).Version)"
    }

    # Runs $Body in a fresh pwsh after a common prologue; returns the child's result as an object.
    function Invoke-FreshPwsh([string] $Body, [hashtable] $Values) {
        $prologue = @'
$ErrorActionPreference = 'Stop'
$Values = Get-Content "$log.values.json" -Raw | ConvertFrom-Json
$script:IdentityListener = $null
$result = [ordered]@{ steps = [ordered]@{} }
function Add-AzAccountsAssemblies {
    foreach ($path in $Values.AzAssemblies) { Add-Type -Path $path }
    # Use them as Az.Accounts does, so that their types really are loaded in the default context.
    $null = [Azure.Core.TokenRequestContext]::new([string[]] @('https://cosmos.azure.com/.default'))
    $null = [Azure.Identity.ManagedIdentityCredential]::new([string] $null)
    $null = [Microsoft.Identity.Client.PublicClientApplicationBuilder]::Create('00000000-0000-0000-0000-000000000001').Build()
    $null = [Newtonsoft.Json.Linq.JObject]::Parse('{"a":1}')
}
# Runs one step; records its value or the whole chain of its error's exceptions.
function Step([string] $Name, [scriptblock] $Block) {
    try { $result.steps[$Name] = [ordered]@{ ok = $true; value = & $Block } }
    catch {
        $chain = @(); $e = $_.Exception
        while ($e) { $chain += "$($e.GetType().FullName): $($e.Message)"; $e = $e.InnerException }
        $result.steps[$Name] = [ordered]@{ ok = $false; errorId = "$($_.FullyQualifiedErrorId)"; chain = $chain }
    }
}
# A managed identity endpoint on this machine that answers as Azure's does where no identity is
# assigned (400, "Identity not found"); Cloud Shell names its endpoint in MSI_ENDPOINT. The
# credential runs and fails at once, and no other address is ever asked.
function Use-IdentityEndpoint {
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start()
    $script:IdentityListener = $listener
    $null = Start-ThreadJob -ArgumentList $listener -ScriptBlock {
        param($listener)
        $body = '{"error":"invalid_request","error_description":"Identity not found"}'
        while ($true) {
            $client = $listener.AcceptTcpClient()
            $stream = $client.GetStream(); $reader = [System.IO.StreamReader]::new($stream)
            while ($reader.ReadLine()) { }
            $bytes = [System.Text.Encoding]::ASCII.GetBytes("HTTP/1.1 400 Bad Request`r`nContent-Type: application/json`r`nContent-Length: $($body.Length)`r`nConnection: close`r`n`r`n$body")
            $stream.Write($bytes, 0, $bytes.Length); $client.Close()
        }
    }
    $env:MSI_ENDPOINT = "http://127.0.0.1:$($listener.LocalEndpoint.Port)/msi/token"
}
function Get-Loaded([string[]] $Names) {
    @([System.AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -in $Names } | ForEach-Object {
        [ordered]@{ name = $_.GetName().Name; version = "$($_.GetName().Version)"; context = [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name }
    })
}
'@
        $epilogue = @'
if ($script:IdentityListener) { $script:IdentityListener.Stop() }
$result.loaded = Get-Loaded @('Azure.Core', 'Azure.Identity', 'Microsoft.Identity.Client', 'Newtonsoft.Json', 'Microsoft.Azure.Cosmos.Client', 'CosmosMigrations.Core', 'CosmosMigrations.Module')
Set-RunnerResult $result
'@
        $log = Join-Path $TestDrive "child-$([guid]::NewGuid().ToString('N')).log"
        $Values.AzAssemblies = $script:AzAssemblies
        $Values.Module = $script:ModulePath
        $Values.Endpoint = $script:Endpoint
        $Values.Key = $script:Key
        $Values | ConvertTo-Json | Set-Content "$log.values.json"
        # Nothing imported first: the body loads the module and the old assemblies in its own order.
        $process = Start-Runner ($prologue, $Body, $epilogue -join "`n") $log -NoImport
        Wait-RunnerResult $process $log -Seconds 180 -ExitZero
    }

    # The steps of one authentication mode, run after the module and the old assemblies are in.
    $script:ModeSteps = @{
        Key              = @'
Step connect { Connect-CosmosMigration -Endpoint $Values.Endpoint -Key $Values.Key -Database $Values.Database -SkipCertificateCheck -Confirm:$false; 'connected' }
Step migrate { (Start-SchemaMigration -Name "iso-$($Values.Field)" -Container users -Operation @{ AddField = $Values.Field; Template = 'key:{name}' } -Confirm:$false).Status }
'@
        ConnectionString = @'
Step connect { Connect-CosmosMigration -ConnectionString "AccountEndpoint=$($Values.Endpoint);AccountKey=$($Values.Key);DisableServerCertificateValidation=True" -Database $Values.Database -Confirm:$false; 'connected' }
Step migrate {
    # A transform: documents cross into PowerShell as hashtables and back, through the module's JSON.
    (Invoke-Backfill -Container users -Name "iso-$($Values.Field)" -Filter "NOT IS_DEFINED(c.$($Values.Field))" -ScriptBlock { param($doc) $doc[$Values.Field] = 'cs:' + $doc.name; $doc } -Confirm:$false).Status
}
'@
        Emulator         = @'
# -Endpoint: this suite's server, wherever it listens (another worktree's may hold port 8081).
Step connect { Connect-CosmosMigration -Emulator -Endpoint $Values.Endpoint -Database $Values.Database -Confirm:$false; 'connected' }
if ($result.steps.connect.ok) {
    Step migrate { (Start-SchemaMigration -Name "iso-$($Values.Field)" -Container users -Operation @{ AddField = $Values.Field; Template = 'emulator:{name}' } -Confirm:$false).Status }
}
'@
        # Keyless, through Azure.Identity's AzureCliCredential (a stand-in az first on PATH): the
        # credential types of the module's Azure.Core beside Az.Accounts' older Azure.Identity.
        EntraId          = @'
$env:PATH = $Values.AzDir + [System.IO.Path]::PathSeparator + $env:PATH
Step connect { Connect-CosmosMigration -EntraId -Endpoint $Values.Endpoint -Database $Values.Database -SkipCertificateCheck -Confirm:$false; 'connected' }
Step migrate { (Start-SchemaMigration -Name "iso-$($Values.Field)" -Container users -Operation @{ AddField = $Values.Field; Template = 'entra:{name}' } -Confirm:$false).Status }
'@
        AccessToken      = @'
Step connect { Connect-CosmosMigration -AccessToken $Values.Token -Endpoint $Values.Endpoint -Database $Values.Database -SkipCertificateCheck -Confirm:$false; 'connected' }
Step migrate { (Start-SchemaMigration -Name "iso-$($Values.Field)" -Container users -Operation @{ AddField = $Values.Field; Template = 'token:{name}' } -Confirm:$false).Status }
'@
        Identity         = @'
Use-IdentityEndpoint
$watch = [System.Diagnostics.Stopwatch]::StartNew()
Step connect { Connect-CosmosMigration -Identity -Endpoint $Values.Endpoint -Database $Values.Database -TimeoutSec 20 -Confirm:$false; 'connected' }
$result.identitySeconds = $watch.Elapsed.TotalSeconds
'@
    }
    $script:Orders = @{
        AzFirst     = @'
Add-AzAccountsAssemblies
Import-Module $Values.Module
{0}
'@
        ModuleFirst = @'
Import-Module $Values.Module
# Connected and working before Az.Accounts' assemblies arrive, then again after.
Step before { Connect-CosmosMigration -Endpoint $Values.Endpoint -Key $Values.Key -Database $Values.Database -SkipCertificateCheck -Confirm:$false; (Get-MigrationStatus | Measure-Object).Count }
Add-AzAccountsAssemblies
Step sameConnection { (Get-MigrationStatus | Measure-Object).Count }
{0}
'@
    }
}

Describe 'Beside Az.Accounts'' assemblies (<Order>, <Mode>)' -ForEach $script:Cases {
    BeforeAll {
        $script:Database = New-TestDatabase
        $script:Kit.CreateContainer($script:Database, 'users', '/pk')
        $script:Kit.SeedUsers($script:Database, 'users', 40, 4)
        $script:Field = "via$Mode"
        $values = @{ Database = $script:Database; Field = $script:Field }
        if ($Mode -in 'EntraId', 'AccessToken') {
            # A token cannot create containers: they exist beforehand, as an administrator makes them.
            $script:Kit.CreateContainer($script:Database, 'migrations', '/id')
            $script:Kit.CreateContainer($script:Database, 'migrations-journal', '/pk')
            $values.Token = New-TestToken
            $values.AzDir = Join-Path $TestDrive "az-$Order"
            $null = New-AzureCliStandIn $values.AzDir $values.Token
        }
        $body = $script:Orders[$Order].Replace('{0}', $script:ModeSteps[$Mode])
        $script:Result = Invoke-FreshPwsh $body $values
        $script:Loaded = @($script:Result.loaded)
    }
    AfterAll { Remove-TestDatabase }

    It 'has the old assemblies in the default context and its own in its context' {
        foreach ($name in 'Azure.Core', 'Azure.Identity', 'Microsoft.Identity.Client') {
            $old = $script:Loaded | Where-Object { $_.name -eq $name -and $_.context -eq 'Default' }
            $old | Should -Not -BeNullOrEmpty -Because "Az.Accounts' $name must really be in the default context"
            [version] $old.version | Should -BeLessThan ([version] $script:BinVersions[$name])
        }
        # pwsh's own Newtonsoft.Json (13.0) stays in the default context: an older one cannot replace it there.
        $ours = @($script:Loaded | Where-Object context -EQ 'CosmosMigrations')
        foreach ($name in 'Azure.Core', 'Newtonsoft.Json', 'Microsoft.Azure.Cosmos.Client', 'CosmosMigrations.Core', 'CosmosMigrations.Module') {
            ($ours | Where-Object name -EQ $name) | Should -Not -BeNullOrEmpty -Because "$name is the module's own"
        }
        ($ours | Where-Object name -EQ 'Azure.Core').version | Should -Be $script:BinVersions['Azure.Core']
        @($script:Loaded | Where-Object { $_.context -eq 'Default' -and $_.name -like 'CosmosMigrations.*' }) | Should -BeNullOrEmpty
        @($script:Loaded | Where-Object { $_.context -eq 'Default' -and $_.name -eq 'Microsoft.Azure.Cosmos.Client' }) | Should -BeNullOrEmpty
    }

    if ($Order -eq 'ModuleFirst') {
        It 'kept working from before the old assemblies arrived' {
            $script:Result.steps.before.ok | Should -BeTrue -Because ($script:Result.steps.before.chain -join "`n")
            $script:Result.steps.sameConnection.ok | Should -BeTrue -Because ($script:Result.steps.sameConnection.chain -join "`n")
        }
    }

    if ($Mode -ne 'Identity') {
        It 'connects and migrates the documents' {
            $connect = $script:Result.steps.connect
            if ($Mode -eq 'Emulator' -and $script:Key -ne 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==') {
                # COSMOS_ENDPOINT names an account: the emulator's key is refused, in the module's words.
                $connect.ok | Should -BeFalse
                $connect.errorId | Should -Match '^AuthenticationFailed,'
                return
            }
            $connect.ok | Should -BeTrue -Because ($connect.chain -join "`n")
            $script:Result.steps.migrate.ok | Should -BeTrue -Because ($script:Result.steps.migrate.chain -join "`n")
            $script:Result.steps.migrate.value | Should -Be 'completed'
            $documents = $script:Kit.ReadAllJson($script:Database, 'users', "SELECT c.name, c.$($script:Field) AS v FROM c") | ConvertFrom-Json
            $documents | Should -HaveCount 40
            $prefix = @{ Key = 'key:'; ConnectionString = 'cs:'; Emulator = 'emulator:'; EntraId = 'entra:'; AccessToken = 'token:' }[$Mode]
            foreach ($document in $documents) { $document.v | Should -Be "$prefix$($document.name)" }
        }
    }

    if ($Mode -eq 'Identity') {
        It 'reaches the identity check and fails with IdentityUnavailable, not an assembly load' {
            $connect = $script:Result.steps.connect
            $connect.ok | Should -BeFalse
            $connect.errorId | Should -Match '^IdentityUnavailable,'
            $connect.chain -join "`n" | Should -Not -Match 'FileLoadException|FileNotFoundException|TypeLoadException|MissingMethodException|InvalidCastException'
            $connect.chain -join "`n" | Should -Match 'ManagedIdentityCredential'
            $connect.chain -join "`n" | Should -Match 'Identity not found'
        $script:Result.identitySeconds | Should -BeLessThan 20
        }
    }

    It 'never fails with an assembly load error' {
        foreach ($step in $script:Result.steps.PSObject.Properties) {
            ($step.Value.chain -join "`n") | Should -Not -Match 'FileLoadException|FileNotFoundException|TypeLoadException|MissingMethodException' -Because "step $($step.Name)"
        }
    }
}

Describe 'The default load context after Import-Module and a full run' {
    BeforeAll {
        $script:Database = New-TestDatabase
        $script:Kit.CreateContainer($script:Database, 'users', '/pk')
        $script:Kit.CreateContainer($script:Database, 'posts', '/pk')
        $script:Kit.SeedUsers($script:Database, 'users', 100, 4)
        $script:Kit.SeedPosts($script:Database, 'posts', 100, 4)
        $body = @'
$platform = [System.Collections.Generic.HashSet[string]]::new([string[]] ([System.AppContext]::GetData('TRUSTED_PLATFORM_ASSEMBLIES') -split [System.IO.Path]::PathSeparator), [System.StringComparer]::Ordinal)
$before = [System.Collections.Generic.HashSet[System.Reflection.Assembly]]::new([System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies)
Import-Module $Values.Module
Step connect { Connect-CosmosMigration -Endpoint $Values.Endpoint -Key $Values.Key -Database $Values.Database -SkipCertificateCheck -Confirm:$false; 'connected' }
Step files { @(Test-MigrationFile $Values.Migrations | Where-Object Valid).Count }
Step dryRun { @(Start-SchemaMigration -Path $Values.Migrations -WhatIf).Count }
Step run { @(Start-SchemaMigration -Path $Values.Migrations -Confirm:$false | Where-Object Status -EQ 'completed').Count }
Step backfill { (Invoke-Backfill -Container users -Name lower-emails -Filter 'IS_STRING(c.email)' -ScriptBlock { param($doc) $doc.email = $doc.email.ToLowerInvariant(); $doc } -Confirm:$false).Status }
Step table { Get-MigrationStatus | Format-Table | Out-String -Width 120 }
Step conformance { (Test-SchemaConformance -Container users -Require @{ avatarUrl = 'string' }).NonConforming }
Step complete { $line = 'Get-MigrationStatus -Name 0001'; @((TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText) }
Step help { (Get-Help Start-SchemaMigration -Full).Synopsis }
Use-IdentityEndpoint
Step identity { Connect-CosmosMigration -Identity -Endpoint $Values.Endpoint -Database $Values.Database -TimeoutSec 20 -Confirm:$false }
$result.added = @([System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies | Where-Object { -not $before.Contains($_) } | ForEach-Object {
    # .NET's and PowerShell's own: the trusted platform assemblies, and PowerShell's modules ($PSHOME).
    [ordered]@{ name = $_.GetName().Name; location = $_.Location; dynamic = $_.IsDynamic; platform = $platform.Contains($_.Location) -or $_.Location.StartsWith($PSHOME + [System.IO.Path]::DirectorySeparatorChar) }
})
$result.moduleContext = @(([System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -EQ 'CosmosMigrations').Assemblies | ForEach-Object { $_.GetName().Name })
'@
        $script:Result = Invoke-FreshPwsh $body @{ Database = $script:Database; Migrations = (Join-Path $script:Root 'examples/migrations') }
    }
    AfterAll { Remove-TestDatabase }

    It 'ran every command of the module' {
        foreach ($name in 'connect', 'files', 'dryRun', 'run', 'backfill', 'table', 'conformance', 'complete', 'help') {
            $script:Result.steps.$name.ok | Should -BeTrue -Because "$name failed: $($script:Result.steps.$name.chain -join "`n")"
        }
        $migrations = @(Get-ChildItem (Join-Path $script:Root 'examples/migrations') -Filter *.psd1).Count
        $script:Result.steps.files.value | Should -Be $migrations
        $script:Result.steps.run.value | Should -Be $migrations
        $script:Result.steps.backfill.value | Should -Be 'completed'
        $script:Result.steps.table.value | Should -Match 'Name\s+Container\s+Status'
        $script:Result.steps.conformance.value | Should -Be 0
        $script:Result.steps.complete.value | Should -Contain '0001_add_avatar_url'
        $script:Result.steps.help.value | Should -Not -BeNullOrEmpty
        $script:Result.steps.identity.errorId | Should -Match '^IdentityUnavailable,'
    }

    It 'holds nothing of the module but its entry assembly (besides .NET''s and PowerShell''s own)' {
        $added = @($script:Result.added)
        $foreign = @($added | Where-Object { -not $_.platform -and -not $_.dynamic })
        $foreign.location | Should -Be @((Join-Path $script:ModulePath 'CosmosMigrations.dll'))
        @($added | Where-Object { $_.dynamic -and $_.name -like '*CosmosMigrations*' }) | Should -BeNullOrEmpty
    }

    It 'holds the module, the SDK, Azure.Core and MSAL in the module''s own context' {
        # The managed identity credential the module uses lives in Azure.Core since 1.5x (Azure.Identity
        # forwards it there), so Azure.Identity.dll itself need not load.
        foreach ($name in 'CosmosMigrations.Module', 'CosmosMigrations.Core', 'Microsoft.Azure.Cosmos.Client', 'Azure.Core', 'Microsoft.Identity.Client', 'Newtonsoft.Json') {
            $script:Result.moduleContext | Should -Contain $name
        }
        # .NET's and PowerShell's own are shared, so that Span, IAsyncEnumerable or PowerShell's types
        # stay one type each (bin/ has 10.0 copies of System.Text.Json and DiagnosticSource for .NET 8).
        foreach ($name in 'System.Memory', 'System.Text.Json', 'System.Diagnostics.DiagnosticSource', 'Microsoft.Bcl.AsyncInterfaces', 'System.Management.Automation') {
            $script:Result.moduleContext | Should -Not -Contain $name
        }
        # Built for net8.0, the module ships none of the netstandard polyfills that .NET 8 has inbox.
        foreach ($name in 'System.Memory', 'System.Buffers', 'System.Numerics.Vectors', 'System.Runtime.CompilerServices.Unsafe', 'System.Threading.Tasks.Extensions',
            'System.Collections.Immutable', 'System.ComponentModel.Annotations', 'System.Formats.Asn1', 'System.Security.AccessControl', 'System.Security.Principal.Windows',
            'System.Security.Cryptography.Cng', 'System.IO.FileSystem.AccessControl', 'System.Management.Automation') {
            Join-Path $script:ModulePath "bin/$name.dll" | Should -Not -Exist
        }
    }
}

Describe 'The types that cross into PowerShell' {
    It 'are PowerShell''s, .NET''s or the module''s own in every cmdlet''s parameters and output' {
        $module = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -EQ 'CosmosMigrations'
        function Test-Type([type] $Type, [string] $Where) {
            if ($Type.HasElementType) { return Test-Type $Type.GetElementType() $Where }
            foreach ($argument in $Type.GenericTypeArguments) { Test-Type $argument $Where }
            $context = [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($Type.Assembly)
            $ownModule = $context -eq $module -and $Type.Assembly.GetName().Name -like 'CosmosMigrations.*'
            ($ownModule -or $context -eq [System.Runtime.Loader.AssemblyLoadContext]::Default) | Should -BeTrue -Because "$Where is $($Type.FullName) from $($Type.Assembly.GetName().Name)"
        }
        foreach ($command in Get-Command -Module CosmosMigrations -CommandType Cmdlet) {
            foreach ($parameter in $command.Parameters.Values) { Test-Type $parameter.ParameterType "$($command.Name) -$($parameter.Name)" }
            foreach ($output in $command.OutputType) {
                $output.Type | Should -Not -BeNullOrEmpty -Because "$($command.Name) declares the output type $($output.Name)"
                Test-Type $output.Type "$($command.Name)'s output"
                foreach ($property in $output.Type.GetProperties()) { Test-Type $property.PropertyType "$($output.Type.Name).$($property.Name)" }
            }
        }
    }
}
