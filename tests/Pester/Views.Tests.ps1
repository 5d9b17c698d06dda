# The default views at a 120-column prompt: every long text (a file's problems, a migration's
# error, the steps of a dry run, sample ids) is shown in full, wrapped, never cut to "…".
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Database = New-TestDatabase
    Connect-Test $script:Database
    $script:Kit.CreateContainer($script:Database, 'users', '/pk')
    $script:Kit.SeedUsers($script:Database, 'users', 60, 4)

    # What a 120-column console shows of the objects, through their default view.
    function Show-AtPrompt { $input | Out-String -Width 120 }

    # Wrapping breaks a text anywhere and indents what follows: compare without whitespace.
    function Assert-ShownInFull([string] $Shown, [string[]] $Texts) {
        $Shown | Should -Not -Match '…'
        @($Shown -split "`r?`n" | Where-Object { $_.TrimEnd().Length -gt 120 }) | Should -BeNullOrEmpty
        $flat = $Shown -replace '\s', ''
        foreach ($text in $Texts) { $flat.Contains(($text -replace '\s', '')) | Should -BeTrue -Because "'$text' must be shown in full:`n$Shown" }
    }
}

AfterAll { $script:Kit.DeleteDatabase($script:Database) }

Describe 'Test-MigrationFile at the prompt' {
    It 'shows every problem of every file in full, one per line' {
        $folder = Join-Path $TestDrive 'problems'
        New-Item -ItemType Directory -Path $folder | Out-Null
        Set-Content (Join-Path $folder '0001_add_avatar_url_for_every_user_of_the_application.psd1') "@{ Name = 'v-0001'; Container = 'users'; Operations = @( @{ AddField = 'avatarUrl'; Valu = 'https://example.invalid/a.png' } ) }"
        Set-Content (Join-Path $folder '0002_same_name.psd1') "@{ Name = 'v-0001'; Container = 'users'; Operations = @( @{ RemoveField = 'legacyField' } ) }"
        Set-Content (Join-Path $folder '0003_broken.psd1') "@{ Name = 'v-0003'; Container = 'users'; Operations = @( @{ AddField = 'x'"
        Set-Content (Join-Path $folder '0004_fine.psd1') "@{ Name = 'v-0004'; Container = 'users'; Operations = @( @{ AddField = 'fine'; Value = 1 } ) }"
        $results = Test-MigrationFile $folder
        $problems = @($results | ForEach-Object { $path = $_.Path; $_.Problems | ForEach-Object { $_.Replace("${path}: ", '') } })
        $problems.Count | Should -BeGreaterOrEqual 4
        ($problems | Measure-Object Length -Maximum).Maximum | Should -BeGreaterThan 70 -Because 'the test needs problems longer than the column'
        $shown = $results | Show-AtPrompt
        Assert-ShownInFull $shown ($problems + @($results | ForEach-Object { Split-Path $_.Path -Leaf }))
        $shown | Should -Match '0004_fine\.psd1\s+True'
    }
}

Describe 'Migration status at the prompt' {
    It 'shows the error of a failed migration in full' {
        $null = Start-SchemaMigration -Name view-failed -Container users -Operation @{ RequireField = 'missingEverywhere'; Type = 'string' } -ErrorAction SilentlyContinue
        $status = Get-MigrationStatus -Name view-failed
        $status.Status | Should -Be 'failed'
        $status.Error.Length | Should -BeGreaterThan 40
        Assert-ShownInFull ($status | Show-AtPrompt) @($status.Error)
    }

    It 'shows every step of a dry run in full' {
        $preview = Start-SchemaMigration -Name view-dry -Container users -WhatIf -Operation @(
            @{ AddField = 'avatarUrl'; Template = 'https://api.dicebear.com/7.x/initials/svg?seed={name:uri}&size=128&radius=50' }
            @{ RenameField = 'userName'; To = 'displayName'; KeepSource = $true }
        ) 6>$null
        Assert-ShownInFull ($preview | Show-AtPrompt) @($preview.Steps)
    }

    It 'shows the sample ids of a conformance check in full' {
        $result = Test-SchemaConformance -Container users -Require @{ neverThere = 'string' }
        @($result.SampleIds).Count | Should -BeGreaterThan 1
        Assert-ShownInFull ($result | Show-AtPrompt) @($result.SampleIds)
    }
}
