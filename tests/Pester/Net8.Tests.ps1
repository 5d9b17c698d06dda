# The engine on .NET 8, PowerShell 7.4's runtime (Azure Automation's and Azure Functions' 7.4),
# where this suite's pwsh 7.6.9 runs on .NET 10. PowerShell 7.4 itself is not served here, so a
# small .NET 8 host (tests/CosmosMigrations.Net8Host) does what CosmosMigrations.psm1 does: it
# loads the built module's entry assembly, opens the module's own load context over bin/, and runs
# a migration with the Core engine inside it (tests/CosmosMigrations.Net8Engine). The host is
# published self-contained: .NET 8 comes from the Microsoft.NETCore.App.Runtime pack that the
# SDK restores, at the patch the SDK picks.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Net8 = Join-Path $script:Root 'output/net8'
    Remove-Item $script:Net8 -Recurse -Force -ErrorAction SilentlyContinue
    $host8 = Join-Path $script:Net8 'host'
    $engine = Join-Path $script:Net8 'engine'
    $log = & dotnet publish (Join-Path $script:Root 'tests/CosmosMigrations.Net8Host/CosmosMigrations.Net8Host.csproj') -c Release -o $host8 --nologo -v q 2>&1
    if ($LASTEXITCODE -ne 0) { throw "The .NET 8 host did not publish: $($log -join "`n")" }
    $log = & dotnet build (Join-Path $script:Root 'tests/CosmosMigrations.Net8Engine/CosmosMigrations.Net8Engine.csproj') -c Release -o $engine --nologo -v q 2>&1
    if ($LASTEXITCODE -ne 0) { throw "The engine run did not build: $($log -join "`n")" }
    $script:Deps = Get-Content (Join-Path $host8 'CosmosMigrations.Net8Host.deps.json') -Raw | ConvertFrom-Json -AsHashtable

    $script:Database = New-TestDatabase
    $script:Kit.CreateContainer($script:Database, 'users', '/pk')
    $script:Kit.SeedUsers($script:Database, 'users', 300, 4)
    $executable = Join-Path $host8 "CosmosMigrations.Net8Host$(if ($IsWindows) { '.exe' })"
    $script:Output = @(& $executable $script:ModulePath (Join-Path $engine 'CosmosMigrations.Net8Engine.dll') $script:Endpoint $script:Key $script:Database 'users' 'net8-add-flag' 2>&1 | ForEach-Object { "$_" })
    $script:Exit = $LASTEXITCODE
    $script:Result = if ($script:Exit -eq 0) { $script:Output[-1] | ConvertFrom-Json } else { $null }
}
AfterAll { Remove-TestDatabase }

Describe 'The Core engine through the module''s load context on .NET 8' {
    It 'runs on .NET 8 from the runtime pack, not on this machine''s .NET' {
        $script:Exit | Should -Be 0 -Because ($script:Output -join "`n")
        $script:Result.framework | Should -Match '^\.NET 8\.0\.\d+$'
        $pack = @($script:Deps.libraries.Keys | Where-Object { $_ -like 'runtimepack.Microsoft.NETCore.App.Runtime.*/8.0.*' })
        $pack | Should -HaveCount 1
        $pack[0].Split('/')[1] | Should -Be ($script:Result.framework -replace '^\.NET ', '')
        $script:Result.runtimeDirectory.TrimEnd('/', '\') | Should -Be (Join-Path $script:Net8 'host')
    }

    It 'completes a migration over every document' {
        $script:Result.status | Should -Be 'completed' -Because $script:Result.error
        $script:Result.processed | Should -Be 300
        $script:Kit.Count($script:Database, 'users', 'c.net8 = true') | Should -Be 300
        $tracking = $script:Kit.ReadAllJson($script:Database, 'migrations', "SELECT * FROM c WHERE c.id = 'net8-add-flag'") | ConvertFrom-Json
        $tracking.status | Should -Be 'completed'
    }

    It 'loads the Core, the Cosmos SDK and Newtonsoft.Json from the module''s bin/ into its own context' {
        $bin = Join-Path $script:ModulePath 'bin'
        foreach ($origin in $script:Result.core, $script:Result.sdk, $script:Result.newtonsoft) {
            $origin.context | Should -Be 'CosmosMigrations'
            $origin.location | Should -BeLike "$bin$([System.IO.Path]::DirectorySeparatorChar)*"
        }
        foreach ($name in 'CosmosMigrations.Module', 'CosmosMigrations.Core', 'Microsoft.Azure.Cosmos.Client', 'Azure.Core', 'Newtonsoft.Json') {
            $script:Result.loaded | Should -Contain $name
        }
        # .NET's own stay the platform's (the module ships no copies of them).
        foreach ($name in 'System.Runtime', 'System.Memory', 'System.Private.CoreLib') { $script:Result.loaded | Should -Not -Contain $name }
    }
}
