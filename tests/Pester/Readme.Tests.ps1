# The README's "A first session at the prompt" runs exactly as the README prints it: the code block
# is read from README.md, so the two cannot drift apart. The shell steps run as printed (Build is
# the one this suite runs on: rebuilding would replace the module under the running suite), then
# the session runs in a fresh pwsh at the repository root, one statement at a time as a prompt runs
# them. One documented change: where this suite's server is not the one on port 8081 (another
# worktree's holds it), the 'Connect-CosmosMigration -Emulator' line gains '-Endpoint' with this
# suite's server, as StartLocalCosmos prints it.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $readme = Get-Content (Join-Path $script:Root 'README.md') -Raw
    $section = ($readme -split '(?m)^## ' | Where-Object { $_.StartsWith('A first session at the prompt') })
    $block = [regex]::Match($section, '(?s)```powershell\r?\n(.*?)```').Groups[1].Value
    $lines = $block -split '\r?\n'
    $at = [array]::IndexOf($lines, 'dotnet pwsh')
    $script:ShellSteps = @($lines[0..($at - 1)] | Where-Object { $_.Trim() })
    $script:Session = ($lines[($at + 1)..($lines.Count - 1)] -join "`n").Trim()
    $script:ConnectLine = 'Connect-CosmosMigration -Emulator -Database demo'
}

Describe 'README: a first session at the prompt' -Skip:(-not $script:IsHarness) {
    BeforeAll {
        # As on a fresh machine: no 'demo' yet, until StartLocalCosmos seeds it.
        $script:Kit.DeleteDatabase('demo')
    }
    AfterAll { $script:Kit.DeleteDatabase('demo') }

    It 'prints the steps this test knows: build, start the server, start pwsh' {
        $script:ShellSteps | Should -HaveCount 2
        $script:ShellSteps[0] | Should -Match '^dotnet pwsh \./build\.ps1 -Task Build(\s+#|$)'
        $script:ShellSteps[1] | Should -Match '^dotnet pwsh \./build\.ps1 -Task StartLocalCosmos(\s+#|$)'
        $script:Session | Should -Match "(?m)^$([regex]::Escape($script:ConnectLine))(\s+#|$)"
    }

    It 'starts the local server as printed, which seeds the database demo' {
        Push-Location $script:Root
        try { $output = Invoke-Expression $script:ShellSteps[1] 2>&1 | ForEach-Object { "$_" } }
        finally { Pop-Location }
        $LASTEXITCODE | Should -Be 0 -Because ($output -join "`n")
        $output -join "`n" | Should -Match "Sample database 'demo': 1,000 users"
        $script:Kit.Count('demo', 'users') | Should -Be 1000
        # The exact line to connect with, -Endpoint included when the server is not on port 8081,
        # and how to stop the server.
        $connect = if ($script:Endpoint -match '^https://localhost:8081/?$') { $script:ConnectLine } else { "Connect-CosmosMigration -Emulator -Endpoint $($script:Endpoint) -Database demo" }
        $output | Should -Contain "Connect from pwsh:  $connect"
        $output -join "`n" | Should -Match 'stop it with: dotnet pwsh \./build\.ps1 -Task StopLocalCosmos'
    }

    It 'runs every command of the session without an error' {
        $session = $script:Session
        if ($script:Endpoint -notmatch '^https://(localhost|127\.0\.0\.1):8081/?$') {
            $session = $session.Replace($script:ConnectLine, "Connect-CosmosMigration -Emulator -Endpoint '$($script:Endpoint)' -Database demo")
        }
        $runner = @'
$ErrorActionPreference = 'Continue'
Set-Location $args[0]
$text = Get-Content $args[1] -Raw
$errors = $null
$ast = [System.Management.Automation.Language.Parser]::ParseInput($text, [ref] $null, [ref] $errors)
if ($errors) { Write-Host "PARSE ERROR: $($errors -join '; ')"; exit 3 }
foreach ($statement in $ast.EndBlock.Statements) {
    Write-Host "PS> $($statement.Extent.Text)"
    try { . ([scriptblock]::Create($statement.Extent.Text)) | Out-Default }
    catch { Write-Host "TERMINATING: $_" }
}
if ($Error.Count) { $Error | ForEach-Object { Write-Host "ERROR: $_" }; exit 2 }
'@
        $runnerFile = Join-Path $TestDrive 'prompt.ps1'
        $sessionFile = Join-Path $TestDrive 'session.ps1'
        Set-Content $runnerFile $runner
        Set-Content $sessionFile $session
        $output = Invoke-Pwsh -File $runnerFile $script:Root $sessionFile
        $LASTEXITCODE | Should -Be 0 -Because ($output -join "`n")
        $statements = [System.Management.Automation.Language.Parser]::ParseInput($session, [ref] $null, [ref] $null).EndBlock.Statements
        $statements.Count | Should -BeGreaterThan 10
        @($output | Where-Object { $_ -like 'PS> *' }).Count | Should -Be $statements.Count

        # What the session did to 'demo': every migration completed, the data in its new shape.
        $tracking = $script:Kit.ReadAllJson('demo', 'migrations', 'SELECT c.id, c.status, c.processed FROM c') | ConvertFrom-Json
        $tracking | Should -HaveCount 10
        @($tracking | Where-Object status -NE 'completed') | Should -BeNullOrEmpty
        $script:Kit.Count('demo', 'users', 'NOT IS_STRING(c.avatarUrl) OR IS_DEFINED(c.userName) OR c.email != LOWER(c.email)') | Should -Be 0
        ($tracking | Where-Object id -EQ 'lower-emails').processed | Should -Be 250
        $script:Kit.Count('demo', 'posts', 'NOT IS_NUMBER(c.priorityLevel) OR IS_DEFINED(c.legacyField)') | Should -Be 0
    }
}
