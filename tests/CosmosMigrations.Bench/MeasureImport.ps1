<#
.SYNOPSIS
    What the module's own AssemblyLoadContext costs at import and first use, side by side.

.DESCRIPTION
    Each round starts two fresh pwsh processes, taking turns: I imports the module as it ships
    (the loader, the entry assembly, the cmdlets in the module's load context); P imports the very
    same cmdlet assembly as a plain binary module into PowerShell's default context, through a
    manifest with the same format file (what the module was before it had a load context). Each
    process times, with a stopwatch, Import-Module and then its first commands against the server
    (Connect-CosmosMigration and Get-MigrationStatus), which load the SDK. Prints one JSON line:
    the medians of each and the milliseconds that isolation adds.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Key,
    [Parameter(Mandatory)] [string] $Database,
    [int] $Rounds = 7
)

$ErrorActionPreference = 'Stop'
$ModulePath = (Resolve-Path $ModulePath).Path
$plain = Join-Path ([System.IO.Path]::GetTempPath()) "cm-plain-$PID"
New-Item -ItemType Directory -Path $plain -Force | Out-Null
$cmdlets = (Import-PowerShellDataFile (Join-Path $ModulePath 'CosmosMigrations.psd1')).CmdletsToExport
Set-Content (Join-Path $plain 'CosmosMigrations.psd1') @"
@{
    RootModule        = '$(Join-Path $ModulePath 'bin/CosmosMigrations.Module.dll')'
    ModuleVersion     = '0.1.0'
    FormatsToProcess  = @('$(Join-Path $ModulePath 'CosmosMigrations.Format.ps1xml')')
    CmdletsToExport   = @($(($cmdlets | ForEach-Object { "'$_'" }) -join ', '))
    FunctionsToExport = @()
    VariablesToExport = @()
    AliasesToExport   = @()
}
"@

$probe = @'
$w = [System.Diagnostics.Stopwatch]::StartNew()
Import-Module $args[0]
$import = $w.Elapsed.TotalMilliseconds
Connect-CosmosMigration -Endpoint $args[1] -Key $args[2] -Database $args[3] -SkipCertificateCheck -Confirm:$false
$null = Get-MigrationStatus
$first = $w.Elapsed.TotalMilliseconds - $import
if ((Get-Command Connect-CosmosMigration).Module.Name -ne 'CosmosMigrations') { throw 'not imported' }
@{ import = $import; first = $first } | ConvertTo-Json -Compress
'@
$file = Join-Path $plain 'probe.ps1'
Set-Content $file $probe

function Measure-Once([string] $Module) {
    $line = & dotnet pwsh -NoProfile -NonInteractive -File $file $Module $Endpoint $Key $Database | Select-Object -Last 1
    if ($LASTEXITCODE -ne 0) { throw "probe of $Module failed: $line" }
    $line | ConvertFrom-Json
}
function Get-Median([double[]] $Values) {
    $sorted = @($Values | Sort-Object)
    $middle = [math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { $sorted[$middle] } else { ($sorted[$middle - 1] + $sorted[$middle]) / 2 }
}

try {
    # One warm-up of each (disk cache, JIT of pwsh itself), not counted.
    $null = Measure-Once $ModulePath; $null = Measure-Once (Join-Path $plain 'CosmosMigrations.psd1')
    $isolated = @(); $plainRuns = @()
    for ($i = 0; $i -lt $Rounds; $i++) {
        $isolated += Measure-Once $ModulePath
        $plainRuns += Measure-Once (Join-Path $plain 'CosmosMigrations.psd1')
    }
    $result = [ordered]@{
        rounds = $Rounds
        importMsIsolated = [math]::Round((Get-Median $isolated.import), 1)
        importMsPlain = [math]::Round((Get-Median $plainRuns.import), 1)
        firstCommandsMsIsolated = [math]::Round((Get-Median $isolated.first), 1)
        firstCommandsMsPlain = [math]::Round((Get-Median $plainRuns.first), 1)
    }
    $result.importMsAdded = [math]::Round($result.importMsIsolated - $result.importMsPlain, 1)
    $result.firstCommandsMsAdded = [math]::Round($result.firstCommandsMsIsolated - $result.firstCommandsMsPlain, 1)
    $result.runsImportIsolated = @($isolated.import | ForEach-Object { [math]::Round($_, 1) })
    $result.runsImportPlain = @($plainRuns.import | ForEach-Object { [math]::Round($_, 1) })
    $result | ConvertTo-Json -Compress
}
finally { Remove-Item $plain -Recurse -Force -ErrorAction SilentlyContinue }
