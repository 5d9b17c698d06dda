# What build.ps1 and every tools/ script share: the repository's folders, the local server's key
# (the emulator's published one) and how a native command runs. Dot-sourced.
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$Root = Split-Path $PSScriptRoot -Parent
$Output = Join-Path $Root 'output'
$ModuleOut = Join-Path $Output 'CosmosMigrations'
$EmulatorKey = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='

function Invoke-Native {
    param([string] $File, [string[]] $Arguments, [string] $WorkingDirectory = $Root)
    Push-Location $WorkingDirectory
    try {
        # To the host: a native command's output would otherwise become the calling function's result.
        & $File @Arguments | Out-Host
        if ($LASTEXITCODE -ne 0) { throw "'$File $($Arguments -join ' ')' failed with exit code $LASTEXITCODE." }
    }
    finally { Pop-Location }
}
