<#
.SYNOPSIS
    Precompiles the module's hot assemblies to native code for one platform (ReadyToRun, crossgen2)
    into bin/<platform>/ beside the IL in bin/.

.DESCRIPTION
    The module loads the images on that platform and the IL on every other (an image compiled for
    another platform does not load at all). Without a compiler the module is complete: the script
    warns and the JIT compiles it.
#>
[CmdletBinding()]
param(
    # The module's bin/ folder.
    [Parameter(Mandatory)] [string] $Bin,
    # 'host' (this machine's platform), a runtime identifier (linux-x64, win-x64, osx-arm64, …), or 'none'.
    [string] $ReadyToRun = 'host'
)

. (Join-Path $PSScriptRoot 'Common.ps1')

# The assemblies on a migration's hot path. Precompiled, they spare every run the JIT's first
# compilations of them (measured on 20,000 documents: a third fewer methods compiled while the
# run goes, and less CPU per document; docs/performance.md). The rest of bin/ is start-up or
# sign-in code, or shared with PowerShell's own copies; the cmdlets (CosmosMigrations.Module)
# are few and load from bin/ by name (src/CosmosMigrations.Entry).
$ReadyToRunAssemblies = @(
    'CosmosMigrations.Core', 'Microsoft.Azure.Cosmos.Client', 'Microsoft.Azure.Cosmos.Direct',
    'Microsoft.Azure.Cosmos.Core', 'Microsoft.Azure.Cosmos.Serialization.HybridRow', 'Newtonsoft.Json', 'Azure.Core')

if ($ReadyToRun -eq 'none') { return }
$os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
# The process's architecture, as the module's load context names its folder (an x64 pwsh can run on an arm64 OS).
$arch = [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
$target = if ($ReadyToRun -eq 'host') { "$os-$arch" } else { $ReadyToRun }
try {
    # The compiler comes from NuGet at the version the SDK picks (tools/ReadyToRun).
    $project = Join-Path $Root 'tools/ReadyToRun/ReadyToRun.csproj'
    Invoke-Native dotnet @('restore', $project, '--nologo', '-v', 'q')
    $assets = Get-Content (Join-Path $Root 'tools/ReadyToRun/obj/project.assets.json') -Raw | ConvertFrom-Json -AsHashtable
    $package = @($assets.project.frameworks.Values.downloadDependencies | Where-Object { $_.name -like 'Microsoft.NETCore.App.Crossgen2.*' })[0]
    if (-not $package) { throw 'the SDK names no ReadyToRun compiler for this machine' }
    $version = $package.version.Trim('[]').Split(',')[0].Trim()
    $folder = @($assets.packageFolders.Keys)[0]
    $compiler = Join-Path $folder "$($package.name.ToLowerInvariant())/$version/tools/crossgen2$(if ($IsWindows) { '.exe' })"
    if (-not (Test-Path $compiler)) { throw "the compiler is missing at $compiler" }
    # References: the running .NET (PowerShell's own) and the module's other assemblies.
    $framework = [System.Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
    # bin/<platform>/: the loader takes an image from there on that platform only.
    $work = Join-Path $Bin $target
    Remove-Item $work -Recurse -Force -ErrorAction SilentlyContinue
    New-Item -ItemType Directory -Path $work | Out-Null
    $targetOs, $targetArch = $target.Split('-')
    $targetOs = @{ win = 'windows'; linux = 'linux'; osx = 'osx' }[$targetOs]
    $assemblies = @(Get-ChildItem $Bin -Filter '*.dll')
    foreach ($name in $ReadyToRunAssemblies) {
        $source = Join-Path $Bin "$name.dll"
        if (-not (Test-Path $source)) { throw "$name.dll is not in the module" }
        $compiled = Join-Path $work "$name.dll"
        $references = $assemblies | Where-Object BaseName -NE $name | ForEach-Object { '-r', $_.FullName }
        $log = & $compiler $source -o $compiled -r (Join-Path $framework '*.dll') @references --targetos $targetOs --targetarch $targetArch -O 2>&1
        if ($LASTEXITCODE -ne 0) { throw "crossgen2 failed on $name.dll: $(($log | Select-Object -First 3) -join ' ')" }
    }
    Write-Host "    ReadyToRun: $($ReadyToRunAssemblies.Count) assemblies precompiled for $target in bin/$target"
}
catch {
    # The module is complete without native code (the JIT compiles it): say so and go on.
    Remove-Item (Join-Path $Bin $target) -Recurse -Force -ErrorAction SilentlyContinue
    Write-Warning "ReadyToRun skipped ($($_.Exception.Message)); the module runs on the JIT alone."
}
