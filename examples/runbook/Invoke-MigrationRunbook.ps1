<#
.SYNOPSIS
    A runbook (Azure Automation, a pipeline step, a scheduled job) that runs the pending migrations
    of a folder within a time slice.

.DESCRIPTION
    Connects without a key (recommended): with COSMOS_ENDPOINT and no key in the environment, it
    signs in with Microsoft Entra ID the way the job already is (-EntraId: a pipeline's service
    principal or workload identity, Connect-AzAccount -Identity run before it, the Azure CLI, or
    the Automation account's managed identity; COSMOS_IDENTITY_CLIENT_ID names a user-assigned
    one). With COSMOS_CONNECTION_STRING, or COSMOS_ENDPOINT and COSMOS_KEY, it uses the key. Runs Start-SchemaMigration -Path with -MaxDuration, so a
    run that the time slice cuts stops at a page boundary and the next run resumes. Writes one
    JSON line per migration (with its failed documents by class) and a summary line. Exit codes:
    1 when a migration failed (including past -MaxFailureRate); 2 when none failed but some
    completed with failures (documents set aside in the failure store: see them with
    Get-MigrationFailure, retry them with -RetryFailures once fixed); 0 otherwise (a migration
    cut by the time slice is not a failure: it reports Status cancelled, StopReason MaxDuration).
    With -Distributed, several jobs share each migration; the same thresholds, JSON and exit codes
    apply.

.EXAMPLE
    ./Invoke-MigrationRunbook.ps1 -MigrationsPath ./migrations -Database appdb -TimeSlice 00:25:00

.EXAMPLE
    ./Invoke-MigrationRunbook.ps1 -MigrationsPath ./migrations -Database appdb -MaxFailureRate 0.01 -Distributed
#>
[CmdletBinding()]
param(
    [string] $MigrationsPath = (Join-Path $PSScriptRoot '../migrations'),
    [string] $Database = $env:COSMOS_DATABASE,
    [TimeSpan] $TimeSlice = '00:25:00',
    [double] $MaxRUPerSecond = 0,
    [int] $BatchSize = 100,
    # The share of documents that may fail and be set aside (0: none may fail).
    [double] $MaxFailureRate = 0,
    # Share each migration with every other job started with -Distributed (the change feed processor).
    [switch] $Distributed,
    [string] $ModulePath = 'CosmosMigrations'
)

$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

if ($env:COSMOS_CONNECTION_STRING -or $env:COSMOS_KEY) {
    Connect-CosmosMigration -Database $Database
}
else {
    # Keyless: the job's identity needs the Cosmos DB Built-in Data Contributor role on the account.
    $signIn = @{ EntraId = $true; Endpoint = $env:COSMOS_ENDPOINT; Database = $Database }
    if ($env:COSMOS_IDENTITY_CLIENT_ID) { $signIn.ManagedIdentityClientId = $env:COSMOS_IDENTITY_CLIENT_ID }
    Connect-CosmosMigration @signIn
}

$run = @{ Path = $MigrationsPath; MaxDuration = $TimeSlice; BatchSize = $BatchSize; ErrorAction = 'Continue'; ErrorVariable = 'runErrors' }
if ($MaxRUPerSecond -gt 0) { $run.MaxRUPerSecond = $MaxRUPerSecond }
if ($MaxFailureRate -gt 0) { $run.MaxFailureRate = $MaxFailureRate }
if ($Distributed) { $run.Distributed = $true }
$results = @(Start-SchemaMigration @run)

foreach ($result in $results) {
    [ordered]@{
        name          = $result.Name
        container     = $result.Container
        status        = $result.Status
        stopReason    = $result.StopReason
        outcome       = $result.Outcome
        processed     = $result.Processed
        scanned       = $result.Scanned
        failed        = $result.Failed
        failedByClass = [ordered]@{ transform = $result.FailedByClass.Transform; refused = $result.FailedByClass.Refused; exhausted = $result.FailedByClass.Exhausted }
        requestCharge = $result.RequestCharge
        startedAt     = if ($result.StartedAt) { $result.StartedAt.ToString('o') }
        completedAt   = if ($result.CompletedAt) { $result.CompletedAt.ToString('o') }
        durationSec   = if ($result.Duration) { [math]::Round($result.Duration.TotalSeconds, 3) }
        error         = $result.Error
    } | ConvertTo-Json -Compress
}

$all = @(Get-MigrationStatus -Path $MigrationsPath)
$failed = @($results | Where-Object Status -EQ 'failed').Count + @($runErrors | Where-Object { $_.FullyQualifiedErrorId -notlike 'DocumentMigrationFailed*' -and $_.FullyQualifiedErrorId -notlike 'FailureRateExceeded*' -and $_.FullyQualifiedErrorId -notlike 'RequirementNotMet*' }).Count
$withFailures = @($results | Where-Object Status -EQ 'completedWithFailures').Count
[ordered]@{
    summary   = $true
    completed             = @($all | Where-Object Status -In 'completed', 'completedWithFailures').Count
    completedWithFailures = @($all | Where-Object Status -EQ 'completedWithFailures').Count
    remaining             = @($all | Where-Object Status -NotIn 'completed', 'completedWithFailures').Count
    failed                = $failed
} | ConvertTo-Json -Compress

if ($failed -gt 0) { exit 1 }
if ($withFailures -gt 0) { exit 2 }
exit 0
