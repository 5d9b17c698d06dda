# The module's loader. Az.Accounts and other modules load their own Azure.Core, Azure.Identity,
# MSAL and Newtonsoft.Json into PowerShell's default load context; so that no version of theirs
# meets one of ours, only the small entry assembly CosmosMigrations.dll goes there. It opens the
# module's own AssemblyLoadContext over bin/, and the cmdlets (bin/CosmosMigrations.Module.dll),
# the Core and every dependency load in it. The cmdlets are imported here as a nested module, so
# the manifest exports them as this module's own. See src/CosmosMigrations.Entry.

# Assembly.LoadFrom, not Add-Type: the same load, without Add-Type's ~130 ms of warming up its
# compiler. Loading the same file again (Import-Module -Force) hands back the loaded assembly.
$entry = [System.Reflection.Assembly]::LoadFrom([System.IO.Path]::Combine($PSScriptRoot, 'CosmosMigrations.dll'))
$implementation = $entry.GetType('CosmosMigrations.Isolation.ModuleLoadContext', $true)::Initialize($PSScriptRoot)

# Imported twice on purpose: Import-Module -Assembly hands back the module it imported before (on
# Import-Module -Force, or after Remove-Module) without adding its cmdlets to this module again;
# importing its module info adds them every time.
Import-Module -ModuleInfo (Import-Module -Assembly $implementation -PassThru)
