# Every powershell block of docs/guides runs, in order, in a fresh pwsh at the repository root.
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
        # A fresh 'appdb' in the seed's old shape for each guide.
        $script:Kit.DeleteDatabase('appdb')
        $script:Kit.CreateDatabase('appdb')
        $script:Kit.CreateContainer('appdb', 'users', '/pk')
        $script:Kit.CreateContainer('appdb', 'posts', '/pk')
        $script:Kit.SeedUsers('appdb', 'users', 200, 4)
        $script:Kit.SeedPosts('appdb', 'posts', 200, 4)
        $script = @("`$ErrorActionPreference = 'Stop'", "Import-Module '$($script:Pester)'", "Set-Location '$($script:Root)'")
        $i = 0
        foreach ($block in $blocks) { $i++; $script += "Write-Host '--- example $i'"; $script += $block }
        $script += "if (`$Error.Count) { `$Error | ForEach-Object { Write-Host `"ERROR: `$_`" }; exit 2 }"
        $file = Join-Path $TestDrive "$Name.ps1"
        Set-Content $file ($script -join "`n")
        $env:COSMOS_CONNECTION_STRING = "AccountEndpoint=$($script:Endpoint);AccountKey=$($script:Key);DisableServerCertificateValidation=True"
        try {
            $output = & dotnet pwsh -NoProfile -NonInteractive -File $file 2>&1 | ForEach-Object { "$_" }
            $exit = $LASTEXITCODE
        }
        finally { Remove-Item env:COSMOS_CONNECTION_STRING }
        $exit | Should -Be 0 -Because ($output -join "`n")
        ($output | Where-Object { $_ -like '--- example *' }).Count | Should -Be $blocks.Count
    }
}

AfterAll { $script:Kit.DeleteDatabase('appdb') }
