# Every powershell block of docs/guides runs, as printed, in order, in a fresh pwsh at the
# repository root, against what build.ps1 -Task StartLocalCosmos seeds (the database 'demo', seeded
# afresh for each guide by the same call) and with no connection settings in the environment: each
# guide connects as it says. The documented changes, for a server that is not the emulator on port
# 8081 (another worktree's holds that port, or COSMOS_ENDPOINT names an account): its address
# replaces https://localhost:8081/ and '-Emulator' gains '-Endpoint', as StartLocalCosmos prints
# it; an account with another key gets '-Key … -SkipCertificateCheck' instead of '-Emulator'.
BeforeDiscovery {
    $root = Resolve-Path (Join-Path $PSScriptRoot '../..')
    $script:Guides = @(Get-ChildItem (Join-Path $root 'docs/guides') -Filter *.md | ForEach-Object { @{ Name = $_.Name; Path = $_.FullName } })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Pester = (Get-Module Pester).Path
}

Describe 'Guide <Name>' -ForEach $script:Guides {
    It 'runs every example without an error' {
        $blocks = [regex]::Matches((Get-Content $Path -Raw), '(?s)```powershell\s*\n(.*?)```') | ForEach-Object { $_.Groups[1].Value }
        $blocks.Count | Should -BeGreaterThan 0
        # A fresh 'demo', as StartLocalCosmos seeds it (tools/LocalCosmos.psm1, Initialize-SampleDatabase).
        $script:Kit.DeleteDatabase('demo')
        $script:Kit.SeedSampleDatabase('demo', 1000, 10) | Should -BeTrue
        $emulatorKey = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='
        $endpoint = $script:Endpoint.TrimEnd('/') + '/'
        $script = @("`$ErrorActionPreference = 'Stop'", "Import-Module '$($script:Pester)'", "Set-Location '$($script:Root)'")
        $i = 0
        foreach ($block in $blocks) {
            $i++
            if ($script:Key -ne $emulatorKey) {
                $block = $block.Replace($emulatorKey, $script:Key).Replace('Connect-CosmosMigration -Emulator', "Connect-CosmosMigration -Endpoint '$endpoint' -Key '$($script:Key)' -SkipCertificateCheck")
            }
            elseif ($endpoint -ne 'https://localhost:8081/') {
                $block = $block.Replace('Connect-CosmosMigration -Emulator', "Connect-CosmosMigration -Emulator -Endpoint $endpoint")
            }
            $script += "Write-Host '--- example $i'"
            $script += $block.Replace('https://localhost:8081/', $endpoint)
        }
        $script += "if (`$Error.Count) { `$Error | ForEach-Object { Write-Host `"ERROR: `$_`" }; exit 2 }"
        $file = Join-Path $TestDrive "$Name.ps1"
        Set-Content $file ($script -join "`n")
        # The guide's process sees no connection settings: it connects as printed.
        $names = 'COSMOS_ENDPOINT', 'COSMOS_KEY', 'COSMOS_CONNECTION_STRING', 'COSMOS_DATABASE'
        $saved = @{}
        foreach ($name in $names) { $saved[$name] = [Environment]::GetEnvironmentVariable($name); [Environment]::SetEnvironmentVariable($name, $null) }
        try {
            $output = Invoke-Pwsh -File $file
            $exit = $LASTEXITCODE
        }
        finally { foreach ($name in $names) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) } }
        $exit | Should -Be 0 -Because ($output -join "`n")
        ($output | Where-Object { $_ -like '--- example *' }).Count | Should -Be $blocks.Count
    }
}

AfterAll { $script:Kit.DeleteDatabase('demo') }
