<#
.SYNOPSIS
    Packages the built module (tools/Build-Module.ps1) as PowerShell users install it:
    output/CosmosMigrations.<version>.nupkg and output/CosmosMigrations.<version>.zip.
#>
[CmdletBinding()]
param()

. (Join-Path $PSScriptRoot 'Common.ps1')

# The module as PowerShell users install it: a nupkg made by PSResourceGet's own
# Publish-PSResource (so Install-PSResource accepts it) and, for Azure Automation, a zip whose
# top folder is the module. Both leave out the debug symbols (.pdb).
$version = (Import-PowerShellDataFile (Join-Path $ModuleOut 'CosmosMigrations.psd1')).ModuleVersion
Write-Host "==> Packaging CosmosMigrations $version" -ForegroundColor Cyan
$work = Join-Path $Output 'package'
Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
$stage = Join-Path $work 'CosmosMigrations'
$repository = Join-Path $work 'repository'
New-Item -ItemType Directory -Path $work, $repository | Out-Null
Copy-Item $ModuleOut -Destination $stage -Recurse
Get-ChildItem $stage -Recurse -File -Filter '*.pdb' | Remove-Item
$nupkg = Join-Path $Output "CosmosMigrations.$version.nupkg"
$zip = Join-Path $Output "CosmosMigrations.$version.zip"
Remove-Item $nupkg, $zip -ErrorAction SilentlyContinue
# In a child process (this one never loads the module) whose home is output/package/home, so
# that the repository is registered there, never in the user's own list (and unregistered
# again in any case). pwsh.dll runs directly: 'dotnet pwsh' would look for its tool under HOME.
# Publish-PSResource validates the manifest.
$publish = @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name CosmosMigrationsBuild -Uri '$repository' -Trusted
try { Publish-PSResource -Path '$stage' -Repository CosmosMigrationsBuild }
finally { Unregister-PSResourceRepository -Name CosmosMigrationsBuild }
"@
$childHome = Join-Path $work 'home'
New-Item -ItemType Directory -Path $childHome | Out-Null
$saved = $env:HOME
$env:HOME = $childHome
try { Invoke-Native dotnet @((Join-Path $PSHOME 'pwsh.dll'), '-NoProfile', '-NonInteractive', '-Command', $publish) }
finally { $env:HOME = $saved }
$published = @(Get-ChildItem $repository -Filter '*.nupkg')
if ($published.Count -ne 1) { throw "Publish-PSResource wrote $($published.Count) packages to $repository." }
Move-Item $published[0].FullName $nupkg
Compress-Archive -Path $stage -DestinationPath $zip
foreach ($file in $nupkg, $zip) {
    Write-Host ("    {0}: {1:N1} MB ({2:N0} bytes)" -f $file, ((Get-Item $file).Length / 1MB), (Get-Item $file).Length)
}
