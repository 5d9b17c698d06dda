# The journal at a page's cost: one record of before-images a page, written before the page's
# writes; none at all for fields added with a constant; and an undo that stays exact when a
# document has images in several records of one step (changed again after the application wrote
# it back in the old shape, or changed twice by a transform that is not idempotent).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase

    function Get-Exact([string] $Container) { , $script:Kit.ReadAllExact($script:Database, $Container, 'SELECT * FROM c') }

    function Get-Records([string] $Name) {
        @($script:Kit.ReadAllJson($script:Database, 'migrations-journal', "SELECT * FROM c WHERE c.migration = '$Name'") | ConvertFrom-Json -AsHashtable)
    }

    function Get-Document([string] $Container, [string] $Id) {
        $script:Kit.ReadAllExact($script:Database, $Container, "SELECT * FROM c WHERE c.id = '$Id'")
    }
}

AfterAll { Remove-TestDatabase }

Describe 'One journal record a page' {
    It 'keeps the images of a page in one record, and no image at all for a field added with a constant (said in -Verbose and the status)' {
        New-SeededContainer 'pages' 250 5
        $before = Get-Exact 'pages'

        $removed = Start-SchemaMigration -Name page-remove -Container pages -Operation @{ RemoveField = 'email' }
        $removed.Processed | Should -Be 250
        $records = Get-Records 'page-remove'
        $records.Count | Should -BeLessOrEqual 8 -Because 'a record holds a page (of 100 at most) of one feed range'
        (@($records | ForEach-Object { $_.ids.Count }) | Measure-Object -Sum).Sum | Should -Be 250
        $records[0].entries[0].changes[0].before | Should -Not -BeNullOrEmpty -Because 'a removed value is a before-image'
        $removed.BeforeImages | Should -Match '^step 1: kept'

        $added = Start-SchemaMigration -Name page-add -Container pages -Operation @{ AddField = 'flag'; Value = 'on' } -Verbose 4>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.VerboseRecord]) { $script:messages += @($_.Message) } else { $_ }
        }
        $added.Processed | Should -Be 250
        $script:messages -match 'Before-images: none needed' | Should -Not -BeNullOrEmpty
        $added.BeforeImages | Should -Match '^step 1: none needed'
        (Get-MigrationStatus -Name page-add).BeforeImages | Should -Match '^step 1: none needed'
        foreach ($record in Get-Records 'page-add') {
            $record.shapes.Count | Should -Be 1 -Because 'every document got the same field and value'
            foreach ($entry in $record.entries) {
                $entry.Keys | Should -Not -Contain 'changes'
                $entry.shape | Should -Be 0
            }
        }

        (Undo-SchemaMigration -Name page-add -Confirm:$false).Processed | Should -Be 250
        (Undo-SchemaMigration -Name page-remove -Confirm:$false).Processed | Should -Be 250
        $after = Get-Exact 'pages'
        for ($i = 0; $i -lt $after.Count; $i++) { $after[$i] | Should -BeExactly $before[$i] }
        @(Get-Records 'page-add').Count + @(Get-Records 'page-remove').Count | Should -Be 0
    }
}

Describe 'A document with images in several records of one step' {
    BeforeAll {
        function New-Users([string] $Container) {
            $script:Kit.CreateContainer($script:Database, $Container, '/pk')
            foreach ($i in 1..30) { $script:Kit.UpsertRaw($script:Database, $Container, "{""id"":""u$i"",""pk"":""p$($i % 3)"",""name"":""User $i"",""tier"":""basic""}") }
        }
    }

    It 'restores what the application wrote back in the old shape, not the older image, with no conflict (<Case>)' -ForEach @(
        @{ Case = 'undo'; Force = $false }
        @{ Case = 'undo -Force'; Force = $true }
    ) {
        $container = "rewritten$($Force.ToString().ToLowerInvariant())"
        New-Users $container
        $before = Get-Exact $container
        $name = "rename-$container"
        $null = Start-SchemaMigration -Name $name -Container $container -Operation @{ RenameField = 'name'; To = 'fullName'; KeepSource = $false }
        # The application writes u7 back in the old shape, with other values.
        $script:Kit.UpsertRaw($script:Database, $container, '{"id":"u7","pk":"p1","name":"Written Back","tier":"gold"}')
        $written = Get-Document $container 'u7'
        # The migration runs again (a catch-up scan or -Follow does the same): u7 is changed a second time.
        (Start-SchemaMigration -Name $name -Container $container -Operation @{ RenameField = 'name'; To = 'fullName'; KeepSource = $false } -Force).Processed | Should -Be 1
        @(Get-Records $name | Where-Object { $_.ids -contains 'u7' }).Count | Should -Be 2

        $undone = Undo-SchemaMigration -Name $name -Force:$Force -Confirm:$false
        $undone.Status | Should -Be 'undone'
        $undone.Conflicts | Should -Be 0
        Get-Document $container 'u7' | Should -BeExactly $written
        $after = Get-Exact $container
        @($after | Where-Object { $_ -notmatch '"id":"u7"' }) | Should -Be @($before | Where-Object { $_ -notmatch '"id":"u7"' })
        @(Get-Records $name).Count | Should -Be 0
    }

    It 'undoes a transform applied twice to the same document in turn, newest first' {
        New-Users 'twice'
        $before = Get-Exact 'twice'
        $bang = @{ Transform = { param($doc) if ($doc.id -eq 'u4') { $doc.name = $doc.name + '!'; $doc } } }
        (Start-SchemaMigration -Name bang -Container twice -Operation $bang).Processed | Should -Be 1
        (Start-SchemaMigration -Name bang -Container twice -Operation $bang -Force).Processed | Should -Be 1
        (Get-Document 'twice' 'u4') | Should -Match '"name":"User 4!!"'

        $undone = Undo-SchemaMigration -Name bang -Confirm:$false
        $undone.Conflicts | Should -Be 0
        (Get-Exact 'twice') | Should -Be $before
    }

    It 'still calls a document changed since the migration a conflict, and keeps its image for -Force' {
        New-Users 'later'
        $before = Get-Exact 'later'
        $null = Start-SchemaMigration -Name later-rename -Container later -Operation @{ RenameField = 'name'; To = 'fullName'; KeepSource = $false }
        $script:Kit.UpsertRaw($script:Database, 'later', '{"id":"u5","pk":"p2","name":"Back","tier":"basic"}')
        $null = Start-SchemaMigration -Name later-rename -Container later -Operation @{ RenameField = 'name'; To = 'fullName'; KeepSource = $false } -Force
        $script:Kit.PatchField($script:Database, 'later', 'u5', 'p2', 'fullName', 'Changed Since')

        $undone = Undo-SchemaMigration -Name later-rename -Confirm:$false -WarningAction SilentlyContinue
        $undone.Conflicts | Should -Be 1
        @($undone.ConflictIds) | Should -Be @('u5')
        @(Get-Records 'later-rename').Count | Should -Be 1 -Because 'only the image of the document left alone stays'

        $forced = Undo-SchemaMigration -Name later-rename -Force -Confirm:$false
        $forced.Conflicts | Should -Be 0
        Get-Document 'later' 'u5' | Should -BeExactly '{"id":"u5","pk":"p2","name":"Back","tier":"basic"}' -Because '-Force puts back what the newest image says: the document as the application wrote it back'
        (Get-Exact 'later') | Where-Object { $_ -notmatch '"id":"u5"' } | Should -Be @($before | Where-Object { $_ -notmatch '"id":"u5"' })
        @(Get-Records 'later-rename').Count | Should -Be 0
    }
}
