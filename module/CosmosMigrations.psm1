# The module's loader. Az.Accounts and other modules load their own Azure.Core, Azure.Identity,
# MSAL and Newtonsoft.Json into PowerShell's default load context; so that no version of theirs
# meets one of ours, only the small entry assembly CosmosMigrations.dll goes there. It opens the
# module's own AssemblyLoadContext over bin/, and the cmdlets (bin/CosmosMigrations.Module.dll),
# the Core and every dependency load in it. The cmdlets are imported here as a nested module, so
# the manifest exports them as this module's own. See src/CosmosMigrations.Entry.
if (-not ('CosmosMigrations.Isolation.ModuleLoadContext' -as [type])) {
    Add-Type -Path ([System.IO.Path]::Combine($PSScriptRoot, 'CosmosMigrations.dll'))
}

$implementation = [CosmosMigrations.Isolation.ModuleLoadContext]::Initialize($PSScriptRoot)
# Imported twice on purpose: Import-Module -Assembly hands back the module it imported before (on
# Import-Module -Force, or after Remove-Module) without adding its cmdlets to this module again;
# importing its module info adds them every time.
Import-Module -ModuleInfo (Import-Module -Assembly $implementation -PassThru)
