<#
.SYNOPSIS
    Publishes the module into output/CosmosMigrations (importable), with its ReadyToRun images,
    its help, and the test data kit (output/testkit) for Pester and the demo.
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')] [string] $Configuration = 'Release',
    # The platform whose native code the module's hot assemblies get (tools/Invoke-ReadyToRun.ps1).
    [string] $ReadyToRun = 'host'
)

. (Join-Path $PSScriptRoot 'Common.ps1')

function Get-ReleaseNotes([string] $Version) {
    # The version's section of CHANGELOG.md ('## <version>' up to the next '## ').
    $changelog = Get-Content (Join-Path $Root 'CHANGELOG.md') -Raw
    $match = [regex]::Match($changelog, '(?ms)^## ' + [regex]::Escape($Version) + '[ \t]*\r?\n(.*?)(?=^## |\z)')
    if (-not $match.Success) { throw "CHANGELOG.md has no section '## $Version'." }
    $match.Groups[1].Value.Trim()
}

function Set-ReleaseNotes([string] $Manifest) {
    # The built manifest's ReleaseNotes come from CHANGELOG.md, so the two cannot drift apart.
    $version = (Import-PowerShellDataFile $Manifest).ModuleVersion
    $notes = (Get-ReleaseNotes $version) -replace "'", "''"
    $text = Get-Content $Manifest -Raw
    $marker = '# ReleaseNotes: the build copies the version''s section of CHANGELOG.md here.'
    if (-not $text.Contains($marker)) { throw "The manifest has no ReleaseNotes marker: $marker" }
    Set-Content $Manifest $text.Replace($marker, "ReleaseNotes = '$notes'") -NoNewline
}

Write-Host "==> Building the module ($Configuration)" -ForegroundColor Cyan
$publish = Join-Path $Output 'publish'
Remove-Item $publish, $ModuleOut -Recurse -Force -ErrorAction SilentlyContinue
$entry = Join-Path $Output 'entry'
Remove-Item $entry -Recurse -Force -ErrorAction SilentlyContinue
Invoke-Native dotnet @('publish', 'src/CosmosMigrations.PowerShell/CosmosMigrations.PowerShell.csproj', '-c', $Configuration, '-o', $publish, '--nologo', '-v', 'q')
Invoke-Native dotnet @('publish', 'src/CosmosMigrations.Entry/CosmosMigrations.Entry.csproj', '-c', $Configuration, '-o', $entry, '--nologo', '-v', 'q')
# The module's root holds the manifest, the loader and the entry assembly (the only one that
# PowerShell's default load context sees); bin/ holds the cmdlets, the Core and every
# dependency, loaded in the module's own AssemblyLoadContext (module/CosmosMigrations.psm1).
$bin = Join-Path $ModuleOut 'bin'
New-Item -ItemType Directory -Path $bin -Force | Out-Null
# Windows-only native pieces of the Cosmos SDK (ServiceInterop) stay: they load on Windows only.
Get-ChildItem $publish -File |
    Where-Object { $_.Name -ne 'System.Management.Automation.dll' -and $_.Extension -in '.dll', '.json', '.xml', '.pdb' } |
    Copy-Item -Destination $bin
Get-ChildItem $entry -File -Filter 'CosmosMigrations.*' | Where-Object Extension -In '.dll', '.pdb' | Copy-Item -Destination $ModuleOut
Copy-Item (Join-Path $Root 'module/*') -Destination $ModuleOut -Recurse -Force
Copy-Item (Join-Path $Root 'LICENSE') -Destination $ModuleOut
Set-ReleaseNotes (Join-Path $ModuleOut 'CosmosMigrations.psd1')
& (Join-Path $PSScriptRoot 'Invoke-ReadyToRun.ps1') -Bin $bin -ReadyToRun $ReadyToRun
# Help is generated in a child process, so that this one never loads the module.
Invoke-Native dotnet @('pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tools/New-HelpFile.ps1'), '-DocsPath', (Join-Path $Root 'docs/commands'), '-ModulePath', $ModuleOut)
# Test data helpers for Pester and the demo (not part of the module).
Invoke-Native dotnet @('publish', 'tests/CosmosMigrations.TestKit/CosmosMigrations.TestKit.csproj', '-c', $Configuration, '-o', (Join-Path $Output 'testkit'), '--nologo', '-v', 'q')
Write-Host "    Module: $ModuleOut"
