# A': the raw SDK's loop (A) hosted in a pwsh process instead of its own, so that what the
# PowerShell host itself costs (its start-up JIT work landing in the run that follows, its larger
# heap) shows beside A and B. Takes the bench's own arguments and prints its JSON line; the CPU it
# reports is the whole pwsh process's, as B's is.
$ErrorActionPreference = 'Stop'
$bench = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot 'bin/Release/net10.0/CosmosMigrations.Bench.dll'))
$null = $bench.EntryPoint.Invoke($null, @(, [string[]]$args))
