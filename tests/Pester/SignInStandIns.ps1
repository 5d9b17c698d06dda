# Stand-ins for what a signed-in machine has, so that -EntraId runs for real through Azure.Identity's
# own credentials: an `az` executable that answers `az account get-access-token` as the Azure CLI
# does, and an Az.Accounts module whose Get-AzAccessToken answers as Az.Accounts 5 does (the token
# as a SecureString), both recording every call. Tokens are minted here: the local server reads a
# token's claims (exp, oid) without verifying its signature (tests/LocalCosmos/auth.js).

function ConvertTo-Base64Url([string] $Text) {
    [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($Text)).TrimEnd('=').Replace('+', '-').Replace('/', '_')
}

# A JWT as Microsoft Entra ID issues them (header.payload.signature), valid for $Seconds (negative: expired).
function New-TestToken([int] $Seconds = 3600, [string] $ObjectId = ([guid]::NewGuid().ToString()), [string] $Name = 'admin@contoso.com') {
    $expires = [DateTimeOffset]::UtcNow.AddSeconds($Seconds).ToUnixTimeSeconds()
    $header = ConvertTo-Base64Url '{"alg":"RS256","typ":"JWT"}'
    $payload = ConvertTo-Base64Url (@{ aud = 'https://localhost'; iss = 'https://sts.windows.net/72f988bf-0000-0000-0000-000000000000/'; oid = $ObjectId; upn = $Name; tid = '72f988bf-0000-0000-0000-000000000000'; exp = $expires; nbf = $expires - 4000 } | ConvertTo-Json -Compress)
    # A signature no other text of the suite could contain: the secrets scans look for it.
    $signature = ConvertTo-Base64Url ('sig-' + [guid]::NewGuid().ToString('N') + [guid]::NewGuid().ToString('N'))
    "$header.$payload.$signature"
}

# A folder holding `az`: it appends its arguments to calls.log and prints what
# `az account get-access-token --output json` prints (accessToken, expiresOn in local time,
# expires_on in epoch seconds, subscription, tenant, tokenType).
function New-AzureCliStandIn([string] $Folder, [string] $Token) {
    New-Item -ItemType Directory -Force $Folder | Out-Null
    $expires = [DateTimeOffset]::UtcNow.AddHours(1)
    $answer = [ordered]@{
        accessToken  = $Token
        expiresOn    = $expires.LocalDateTime.ToString('yyyy-MM-dd HH:mm:ss.ffffff', [Globalization.CultureInfo]::InvariantCulture)
        expires_on   = $expires.ToUnixTimeSeconds()
        subscription = '00000000-0000-0000-0000-00000000aaaa'
        tenant       = '72f988bf-0000-0000-0000-000000000000'
        tokenType    = 'Bearer'
    } | ConvertTo-Json
    Set-Content (Join-Path $Folder 'answer.json') $answer
    $log = Join-Path $Folder 'calls.log'
    Set-Content (Join-Path $Folder 'az') @"
#!/bin/sh
echo "`$*" >> '$log'
if [ "`$1 `$2" != "account get-access-token" ]; then echo "ERROR: stand-in answers only 'az account get-access-token'" >&2; exit 2; fi
cat '$(Join-Path $Folder 'answer.json')'
"@
    & chmod +x (Join-Path $Folder 'az')
    $log
}

# A module folder holding Az.Accounts 5.1.0 whose Get-AzAccessToken records its parameters and
# returns the token as Az.Accounts 5 does: Token a SecureString, ExpiresOn a DateTimeOffset. Also a
# folder with `pwsh` (AzurePowerShellCredential starts `pwsh -NoProfile -NonInteractive
# -EncodedCommand …` through /bin/sh), running this very PowerShell.
function New-AzPowerShellStandIn([string] $Folder, [string] $Token) {
    $module = Join-Path $Folder 'modules/Az.Accounts/5.1.0'
    New-Item -ItemType Directory -Force $module | Out-Null
    $log = Join-Path $Folder 'calls.log'
    Set-Content (Join-Path $module 'Az.Accounts.psd1') "@{ ModuleVersion = '5.1.0'; RootModule = 'Az.Accounts.psm1'; FunctionsToExport = @('Get-AzAccessToken'); GUID = '17a2feff-488b-47f9-8729-e2cec094624c' }"
    Set-Content (Join-Path $module 'Az.Accounts.psm1') @"
function Get-AzAccessToken {
    param([string] `$ResourceUrl, [string] `$TenantId, [switch] `$AsSecureString)
    "ResourceUrl=`$ResourceUrl TenantId=`$TenantId" | Add-Content '$log'
    [pscustomobject]@{
        Token     = ConvertTo-SecureString '$Token' -AsPlainText -Force
        ExpiresOn = [DateTimeOffset]::UtcNow.AddHours(1)
        TenantId  = '72f988bf-0000-0000-0000-000000000000'
        UserId    = 'admin@contoso.com'
        Type      = 'Bearer'
    }
}
"@
    $bin = Join-Path $Folder 'bin'
    New-Item -ItemType Directory -Force $bin | Out-Null
    $dotnet = (Get-Process -Id $PID).Path
    $launch = if ((Split-Path $dotnet -Leaf) -like 'dotnet*') { "'$dotnet' '$(Join-Path $PSHOME 'pwsh.dll')'" } else { "'$dotnet'" }
    Set-Content (Join-Path $bin 'pwsh') "#!/bin/sh`nexec $launch `"`$@`""
    & chmod +x (Join-Path $bin 'pwsh')
    [pscustomobject]@{ Log = $log; ModulePath = (Join-Path $Folder 'modules'); Bin = $bin }
}

# The variables through which Azure.Identity finds a service principal, a workload identity or a
# managed identity endpoint: cleared in a child that must find none.
$script:IdentityVariables = @(
    'AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PASSWORD',
    'AZURE_USERNAME', 'AZURE_PASSWORD', 'AZURE_FEDERATED_TOKEN_FILE', 'AZURE_AUTHORITY_HOST', 'AZURE_TOKEN_CREDENTIALS',
    'IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'MSI_ENDPOINT', 'MSI_SECRET', 'IMDS_ENDPOINT', 'AZURE_POD_IDENTITY_AUTHORITY_HOST', 'AZURE_COSMOS_AAD_SCOPE_OVERRIDE'
)
