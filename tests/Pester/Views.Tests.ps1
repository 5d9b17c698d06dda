# The default views whose key column is long text, at a 120-column prompt: a file's problems and
# a conformance check's sample ids are shown in full, wrapped, never cut to "…". (The status and
# dry-run tables have nine and six columns: wrapped, their last column would be squeezed to a few
# characters on an 80-column terminal, so they stay one line per row; Format-List shows all.)
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase
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

AfterAll { Remove-TestDatabase }

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

Describe 'Conformance at the prompt' {
    It 'shows the sample ids of a conformance check in full' {
        $result = Test-SchemaConformance -Container users -Require @{ neverThere = 'string' }
        @($result.SampleIds).Count | Should -BeGreaterThan 1
        Assert-ShownInFull ($result | Show-AtPrompt) @($result.SampleIds)
    }
}
