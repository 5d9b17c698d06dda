# The package as PowerShell users install it (build.ps1 -Task Package; -Task Test makes it too):
# its contents, its metadata, and an Install-PSResource from a folder repository into a clean
# profile (a child pwsh whose user data folder and module path are new and empty) after which a
# migration runs by command name, the module auto-loading without Import-Module.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Version = (Import-PowerShellDataFile (Join-Path $script:ModulePath 'CosmosMigrations.psd1')).ModuleVersion
    $script:Nupkg = Join-Path $script:Root "output/CosmosMigrations.$($script:Version).nupkg"
    $script:Zip = Join-Path $script:Root "output/CosmosMigrations.$($script:Version).zip"
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    function Get-Entries([string] $Archive) {
        $file = [System.IO.Compression.ZipFile]::OpenRead($Archive)
        try { @($file.Entries | ForEach-Object FullName) } finally { $file.Dispose() }
    }
    function Read-Entry([string] $Archive, [string] $Name) {
        $file = [System.IO.Compression.ZipFile]::OpenRead($Archive)
        try {
            $reader = [System.IO.StreamReader]::new($file.GetEntry($Name).Open())
            try { $reader.ReadToEnd() } finally { $reader.Dispose() }
        }
        finally { $file.Dispose() }
    }
}

Describe 'The nupkg' {
    BeforeAll {
        $script:Entries = Get-Entries $script:Nupkg
        $script:Nuspec = [xml](Read-Entry $script:Nupkg 'CosmosMigrations.nuspec')
    }

    It 'holds the built module, its licence and no debug symbols' {
        $built = @(Get-ChildItem $script:ModulePath -Recurse -File | Where-Object Extension -NE '.pdb' |
            ForEach-Object { [System.IO.Path]::GetRelativePath($script:ModulePath, $_.FullName).Replace('\', '/') })
        foreach ($file in $built) { $script:Entries | Should -Contain $file }
        $script:Entries | Should -Contain 'LICENSE'
        $script:Entries | Should -Contain 'CosmosMigrations.psd1'
        $script:Entries | Should -Contain 'bin/CosmosMigrations.Module.dll'
        @($script:Entries | Where-Object { $_ -like '*.pdb' }) | Should -BeNullOrEmpty
        Read-Entry $script:Nupkg 'LICENSE' | Should -Match '^MIT License'
    }

    It 'names the platforms, its licence in the copyright, the release notes of CHANGELOG.md, and no invented address' {
        $metadata = $script:Nuspec.package.metadata
        $metadata.id | Should -Be 'CosmosMigrations'
        $metadata.version | Should -Be $script:Version
        $tags = $metadata.tags -split ' '
        foreach ($tag in 'PSEdition_Core', 'Windows', 'Linux', 'MacOS', 'CosmosDB', 'Azure') { $tags | Should -Contain $tag }
        $metadata.copyright | Should -Match 'MIT'
        $changelog = Get-Content (Join-Path $script:Root 'CHANGELOG.md') -Raw
        $section = [regex]::Match($changelog, '(?ms)^## ' + [regex]::Escape($script:Version) + '[ \t]*\r?\n(.*?)(?=^## |\z)').Groups[1].Value.Trim()
        $section | Should -Not -BeNullOrEmpty
        ($metadata.releaseNotes -replace '\r', '') | Should -Be ($section -replace '\r', '')
        foreach ($element in 'projectUrl', 'licenseUrl', 'iconUrl') { $metadata.$element | Should -BeNullOrEmpty -Because "$element would be an invented address" }
        $script:Nuspec.OuterXml | Should -Not -Match 'example\.invalid'
        $manifest = Import-PowerShellDataFile (Join-Path $script:ModulePath 'CosmosMigrations.psd1')
        $manifest.PrivateData.PSData.Keys | Should -Not -Contain 'ProjectUri'
        $manifest.Keys | Should -Not -Contain 'HelpInfoUri'
    }
}

Describe 'The Azure Automation zip' {
    It 'holds the same files under one top folder named after the module' {
        $entries = @(Get-Entries $script:Zip | Where-Object { -not $_.EndsWith('/') })
        @($entries | ForEach-Object { $_.Split('/')[0] } | Sort-Object -Unique) | Should -Be @('CosmosMigrations')
        $entries | Should -Contain 'CosmosMigrations/CosmosMigrations.psd1'
        $entries | Should -Contain 'CosmosMigrations/LICENSE'
        @($entries | Where-Object { $_ -like '*.pdb' }) | Should -BeNullOrEmpty
        $packaged = @($script:Entries | Where-Object { $_ -notmatch '^(_rels/|package/|\[Content_Types\]\.xml$|CosmosMigrations\.nuspec$)' } | Sort-Object)
        @($entries | ForEach-Object { $_.Substring('CosmosMigrations/'.Length) } | Sort-Object) | Should -Be $packaged
    }
}

Describe 'Install-PSResource into a clean profile, then a command by name' {
    BeforeAll {
        $script:Database = New-TestDatabase
        $script:Kit.CreateContainer($script:Database, 'users', '/pk')
        $script:Kit.SeedUsers($script:Database, 'users', 120, 4)
        $repository = Join-Path $TestDrive 'repository'
        $script:Profile = Join-Path $TestDrive 'profile'
        New-Item -ItemType Directory -Path $repository, $script:Profile | Out-Null
        Copy-Item $script:Nupkg $repository
        # The child's home is a new folder: its user data (PSResourceGet's repository list, the
        # CurrentUser modules) starts empty, and its module path is pwsh's default for that home,
        # nothing inherited. pwsh.dll runs directly ('dotnet pwsh' would look for its tool under HOME).
        $install = @'
$ErrorActionPreference = 'Stop'
$before = @(Get-Module -ListAvailable CosmosMigrations).Count
Register-PSResourceRepository -Name local -Uri $args[0] -Trusted
Install-PSResource -Name CosmosMigrations -Repository local -Scope CurrentUser
$installed = Get-InstalledPSResource -Name CosmosMigrations -Scope CurrentUser
"BEFORE $before"
"INSTALLED $($installed.Version) $($installed.InstalledLocation)"
'@
        $run = @'
$ErrorActionPreference = 'Stop'
"LOADED-BEFORE $(@(Get-Module CosmosMigrations).Count)"
Connect-CosmosMigration -Endpoint $args[0] -Key $args[1] -Database $args[2] -SkipCertificateCheck -Confirm:$false | Out-Null
$result = Start-SchemaMigration -Name pkg-add-flag -Container users -Operation @{ AddField = 'installed'; Value = $true } -Confirm:$false
"MODULE $((Get-Module CosmosMigrations).ModuleBase)"
"RESULT $($result.Status) $($result.Processed)"
'@
        Set-Content (Join-Path $TestDrive 'install.ps1') $install
        Set-Content (Join-Path $TestDrive 'run.ps1') $run
        $pwsh = Join-Path $PSHOME 'pwsh.dll'
        $saved = @{ HOME = $env:HOME; PSModulePath = $env:PSModulePath; XDG_DATA_HOME = $env:XDG_DATA_HOME }
        $env:HOME = $script:Profile
        Remove-Item env:PSModulePath, env:XDG_DATA_HOME -ErrorAction SilentlyContinue
        try {
            $script:InstallOutput = & dotnet $pwsh -NoProfile -NonInteractive -File (Join-Path $TestDrive 'install.ps1') $repository 2>&1 | ForEach-Object { "$_" }
            $script:InstallExit = $LASTEXITCODE
            $script:RunOutput = & dotnet $pwsh -NoProfile -NonInteractive -File (Join-Path $TestDrive 'run.ps1') $script:Endpoint $script:Key $script:Database 2>&1 | ForEach-Object { "$_" }
            $script:RunExit = $LASTEXITCODE
        }
        finally {
            foreach ($name in $saved.Keys) { if ($null -ne $saved[$name]) { Set-Item "env:$name" $saved[$name] } }
        }
    }
    AfterAll { Remove-TestDatabase }

    It 'installs the package into the profile that had no CosmosMigrations' {
        $script:InstallExit | Should -Be 0 -Because ($script:InstallOutput -join "`n")
        $script:InstallOutput | Should -Contain 'BEFORE 0'
        $line = $script:InstallOutput | Where-Object { $_ -like 'INSTALLED *' }
        $line | Should -BeLike "INSTALLED $($script:Version) $($script:Profile)*"
        $base = Join-Path $script:Profile ".local/share/powershell/Modules/CosmosMigrations/$($script:Version)"
        Join-Path $base 'CosmosMigrations.psd1' | Should -Exist
        Join-Path $base 'LICENSE' | Should -Exist
        @(Get-ChildItem $base -Recurse -Filter *.pdb) | Should -BeNullOrEmpty
    }

    It 'runs a migration by command name: PowerShell loads the installed module by itself' {
        $script:RunExit | Should -Be 0 -Because ($script:RunOutput -join "`n")
        $script:RunOutput | Should -Contain 'LOADED-BEFORE 0'
        $script:RunOutput | Should -Contain "MODULE $(Join-Path $script:Profile ".local/share/powershell/Modules/CosmosMigrations/$($script:Version)")"
        $script:RunOutput | Should -Contain 'RESULT completed 120'
        $script:Kit.Count($script:Database, 'users', 'c.installed = true') | Should -Be 120
    }
}
