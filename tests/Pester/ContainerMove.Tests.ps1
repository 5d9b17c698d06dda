# Moving a container to a new partition key, through the module, on a server of several ranges:
# the preflight (Test-ContainerMove), the copy (Start-ContainerMove) and the cut-over
# (Complete-ContainerMove).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase

    # 200 orders over 20 source keys and 4 tenants, then documents made to collide or miss the new key.
    $script:Kit.CreateContainer($script:Database, 'orders', '/pk')
    foreach ($i in 0..199) {
        $script:Kit.Upsert($script:Database, 'orders', (@{ id = "o$i"; pk = "p$($i % 20)"; tenant = "t$($i % 4)"; customer = "c$($i % 10)"; total = $i } | ConvertTo-Json -Compress))
    }
    # dup1 twice and dup2 three times under one tenant each: 1 + 2 documents the target would refuse.
    # dup3 twice under two tenants: no collision. m1..m3 have no tenant.
    $extra = @(
        @{ id = 'dup1'; pk = 'pA'; tenant = 't0' }, @{ id = 'dup1'; pk = 'pB'; tenant = 't0' }
        @{ id = 'dup2'; pk = 'pC'; tenant = 't1' }, @{ id = 'dup2'; pk = 'pD'; tenant = 't1' }, @{ id = 'dup2'; pk = 'pE'; tenant = 't1' }
        @{ id = 'dup3'; pk = 'pF'; tenant = 't0' }, @{ id = 'dup3'; pk = 'pG'; tenant = 't1' }
        @{ id = 'm1'; pk = 'pH' }, @{ id = 'm2'; pk = 'pH' }, @{ id = 'm3'; pk = 'pI' }
    )
    foreach ($document in $extra) { $script:Kit.Upsert($script:Database, 'orders', ($document | ConvertTo-Json -Compress)) }
}

AfterAll { Remove-TestDatabase }

Describe 'Test-ContainerMove' {
    It 'counts documents and keys, and names the documents without the key and the ids that would collide' {
        $before = $script:Kit.ReadAllExact($script:Database, 'orders') | Sort-Object
        $check = Test-ContainerMove -Container orders -PartitionKey /tenant -SampleSize 10
        $check.GetType().FullName | Should -Be 'CosmosMigrations.Moving.MovePreflight'
        $check.Documents | Should -Be 210
        $check.Bytes | Should -BeGreaterThan 0
        $check.DistinctKeys | Should -Be 5 -Because 't0..t3 and the partition of documents without a tenant'
        $check.DistinctKeysEstimated | Should -BeFalse
        $check.MissingKey | Should -Be 3
        @($check.MissingKeySampleIds | Sort-Object) | Should -Be @('m1', 'm2', 'm3')
        $check.Collisions | Should -Be 3 -Because 'dup1 repeats once and dup2 twice under one tenant; dup3 is under two tenants'
        $check.CollisionsExact | Should -BeTrue
        @($check.CollisionSampleIds | ForEach-Object { ($_ -split ' @ ')[0] } | Sort-Object -Unique) | Should -Be @('dup1', 'dup2')
        $check.CollisionSampleIds | Should -Contain 'dup2 @ ["t1"]'
        $check.Ready | Should -BeFalse
        @($check.Problems).Count | Should -Be 2
        ($check.Problems -join ' ') | Should -Match 'repeat an id within one logical partition'
        ($check.Problems -join ' ') | Should -Match 'no value at /tenant'
        $t1 = $check.LargestKeys | Where-Object Key -EQ '["t1"]'
        $t1.Documents | Should -Be 54
        $t1.Estimated | Should -BeFalse
        $t1.ShareOfLimit | Should -BeLessThan 0.001
        $check.LargestKeys[0].Bytes | Should -BeGreaterOrEqual $check.LargestKeys[-1].Bytes
        $check.RequestCharge | Should -BeGreaterThan 0
        $check.EstimatedRequestUnits | Should -BeGreaterThan 210
        $check.EstimateBasis | Should -Match 'RU/doc to read'
        ($check.Settings | Where-Object Setting -EQ 'PartitionKey').CarriesOver | Should -BeFalse
        ($check.Settings | Where-Object Setting -EQ 'IndexingPolicy').CarriesOver | Should -BeTrue
        ($check.Settings | Where-Object Setting -EQ 'DefaultTimeToLive').CarriesOver | Should -BeTrue
        ($script:Kit.ReadAllExact($script:Database, 'orders') | Sort-Object) | Should -Be $before -Because 'the preflight writes nothing'
    }

    It 'is ready for a key every document has and under which ids are unique, and estimates time at -MaxRUPerSecond' {
        $check = Test-ContainerMove -Container orders -PartitionKey /id -MaxRUPerSecond 1000 -Filter "STARTSWITH(c.id, 'o')"
        $check.Documents | Should -Be 200
        $check.DistinctKeys | Should -Be 200
        $check.Collisions | Should -Be 0
        $check.MissingKey | Should -Be 0
        $check.Ready | Should -BeTrue
        $check.Problems | Should -BeNullOrEmpty
        $check.EstimatedDuration | Should -Not -BeNullOrEmpty
        [math]::Abs($check.EstimatedDuration.TotalSeconds - $check.EstimatedRequestUnits / 1000) | Should -BeLessThan 0.01 -Because 'the time is the estimate at the budget'
        $check.EstimateBasis | Should -Match 'MaxRUPerSecond 1,000'
    }

    It 'checks one tenant with -Filter and a hierarchical key' {
        $check = Test-ContainerMove -Container orders -PartitionKey /customer, /id -Filter "c.tenant = 't1'"
        $check.PartitionKey | Should -Be @('/customer', '/id')
        $check.Documents | Should -Be 54
        $check.MissingKey | Should -Be 4 -Because 'dup2 (three times) and dup3 have no customer'
        $check.Collisions | Should -Be 2 -Because 'the three dup2 share the key [undefined, "dup2"]'
        $check.CollisionSampleIds | Should -Be @('dup2 @ [undefined,"dup2"]')
    }

    It 'shows its list view at the prompt' {
        $shown = Test-ContainerMove -Container orders -PartitionKey /tenant | Out-String -Width 120
        $shown | Should -Match 'Ready\s+: False'
        $shown | Should -Match '/pk -> /tenant'
        $shown | Should -Match 'Collisions\s+: 3 \(e\.g\. '
        $shown | Should -Match 'IndexingPolicy: copied'
    }

    It 'refuses <Case> with <Id>, reading nothing' -ForEach @(
        @{ Case = 'a path without a slash'; Id = 'InvalidPartitionKeyPath'; Key = @('tenant') }
        @{ Case = 'an empty segment'; Id = 'InvalidPartitionKeyPath'; Key = @('/a//b') }
        @{ Case = 'four paths'; Id = 'InvalidPartitionKeyPath'; Key = @('/a', '/b', '/c', '/d') }
        @{ Case = 'the source key'; Id = 'SamePartitionKey'; Key = @('/pk') }
    ) {
        $error.Clear()
        $result = Test-ContainerMove -Container orders -PartitionKey $Key -ErrorVariable failed -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be "$Id,CosmosMigrations.PowerShell.Commands.TestContainerMoveCommand"
        $failed[0].CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failed[0].ErrorDetails.RecommendedAction | Should -Not -BeNullOrEmpty
    }
}

Describe 'Start-ContainerMove and Complete-ContainerMove' {
    It 'moves a container under live inserts, updates and deletes: the target equals the source, with its settings, and the source is untouched' {
        $source = @{
            id = 'live'; partitionKey = @{ paths = @('/pk'); kind = 'Hash' }; defaultTtl = -1
            indexingPolicy = @{ indexingMode = 'consistent'; automatic = $true; includedPaths = @(@{ path = '/*' }); excludedPaths = @(@{ path = '/blob/*' }, @{ path = '/"_etag"/?' }) }
            uniqueKeyPolicy = @{ uniqueKeys = @(@{ paths = @('/name') }) }
            computedProperties = @(@{ name = 'cp_lower'; query = 'SELECT VALUE LOWER(c.name) FROM c' })
        }
        $script:Kit.CreateContainerFromJson($script:Database, ($source | ConvertTo-Json -Depth 10 -Compress))
        $script:Kit.Seed($script:Database, 'live', 3000, 40, 0, $null)
        $untouched = $script:Kit.ReadAllJson($script:Database, 'live', "SELECT c.id, c._etag FROM c WHERE STARTSWITH(c.id, 'd2')") | Sort-Object
        $untouched.Count | Should -BeGreaterThan 100

        # The application writes while the copy runs: inserts, updates, deletes.
        $writer = Start-ThreadJob -ScriptBlock {
            param($kit, $database)
            $kit.Seed($database, 'live', 300, 40, 3000, $null)
            foreach ($i in 1000..1199) { $kit.PatchField($database, 'live', "d$i", "p$($i % 40)", 'name', "Renamed $i") }
            foreach ($i in 1200..1299) { $kit.Delete($database, 'live', "d$i", "p$($i % 40)") }
        } -ArgumentList $script:Kit, $script:Database

        $status = Start-ContainerMove -Name live-move -Container live -Target live2 -PartitionKey /email -Confirm:$false
        $writer | Wait-Job -Timeout 120 | Receive-Job
        $status.Status | Should -Be 'copied'
        $status.Phase | Should -Be 'copied'
        $status.Target | Should -Be 'live2'
        $status.Processed | Should -BeGreaterOrEqual 2900
        # Each source version counts once: 3,300 inserts and 200 renames are all the versions there were.
        $status.Processed | Should -BeLessOrEqual 3500
        (Get-MigrationStatus -Name live-move).Status | Should -Be 'copied'

        # Writes after the copy returned: the cut-over's drain and reconciliation take them.
        $script:Kit.Seed($script:Database, 'live', 20, 40, 5000, $null)
        foreach ($i in 1300..1309) { $script:Kit.Delete($script:Database, 'live', "d$i", "p$($i % 40)") }
        $script:Kit.PatchField($script:Database, 'live', 'd1500', 'p20', 'name', 'Late rename')

        $done = Complete-ContainerMove -Name live-move -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Phase | Should -Be 'completed'
        $done.Message | Should -Match 'same 3210 document'
        $script:Kit.Count($script:Database, 'live2') | Should -Be 3210
        $script:Kit.Count($script:Database, 'live') | Should -Be 3210
        (Get-UserContent live2) | Should -Be (Get-UserContent live) -Because 'the target holds every document of the source, with its latest content, and nothing else'
        (Get-Tracking live-move).move.deletesReconciled | Should -BeGreaterOrEqual 10

        $target = $script:Kit.ContainerJson($script:Database, 'live2') | ConvertFrom-Json
        $target.partitionKey.paths | Should -Be @('/email')
        $target.defaultTtl | Should -Be -1
        $target.uniqueKeyPolicy.uniqueKeys[0].paths | Should -Be @('/name')
        @($target.indexingPolicy.excludedPaths.path) | Should -Contain '/blob/*'
        $target.computedProperties[0].name | Should -Be 'cp_lower'
        ($script:Kit.ReadAllJson($script:Database, 'live', "SELECT c.id, c._etag FROM c WHERE STARTSWITH(c.id, 'd2')") | Sort-Object) | Should -Be $untouched -Because 'the move never writes to the source'

        # Done is done: starting or completing it again changes nothing.
        (Complete-ContainerMove -Name live-move -Confirm:$false).Outcome | Should -Be 'Skipped'
    }

    It 'moves one tenant out with -Filter, reshaping on the way' {
        $status = Start-ContainerMove -Name t2-out -Container orders -Target tenant2 -PartitionKey /customer -Filter "c.tenant = 't2'" -Operation @{ AddField = 'movedFrom'; Value = 'orders' } -Confirm:$false
        $status.Status | Should -Be 'copied'
        $done = Complete-ContainerMove -Name t2-out -Confirm:$false
        $done.Status | Should -Be 'completed'
        $script:Kit.Count($script:Database, 'tenant2') | Should -Be 50
        $script:Kit.Count($script:Database, 'tenant2', "c.tenant = 't2' AND c.movedFrom = 'orders'") | Should -Be 50
        $script:Kit.Count($script:Database, 'orders', 'IS_DEFINED(c.movedFrom)') | Should -Be 0
    }

    It 'moves to a hierarchical key' {
        $status = Start-ContainerMove -Name hpk -Container orders -Target orders-hpk -PartitionKey /tenant, /customer -Filter "STARTSWITH(c.id, 'o')" -Confirm:$false
        $status.Status | Should -Be 'copied'
        (Complete-ContainerMove -Name hpk -Confirm:$false).Status | Should -Be 'completed'
        $target = $script:Kit.ContainerJson($script:Database, 'orders-hpk') | ConvertFrom-Json
        $target.partitionKey.kind | Should -Be 'MultiHash'
        $target.partitionKey.paths | Should -Be @('/tenant', '/customer')
        $script:Kit.Count($script:Database, 'orders-hpk') | Should -Be 200
    }

    It 'follows the application writes with -Follow until Complete-ContainerMove stops it and cuts over' {
        New-SeededContainer 'follow' 500 20
        $follower = Start-ConnectedJob 'Start-ContainerMove -Name follow-move -Container follow -Target follow2 -PartitionKey /email -Follow -Confirm:$false'
        Wait-Until { (Get-MigrationStatus -Name follow-move -ErrorAction SilentlyContinue).Phase -eq 'following' } 90 | Should -BeTrue

        # Written after every document was copied: the follower copies them while it follows.
        $script:Kit.Seed($script:Database, 'follow', 30, 20, 500, $null)
        $script:Kit.PatchField($script:Database, 'follow', 'd7', 'p7', 'name', 'Followed')
        Wait-Until { $script:Kit.Count($script:Database, 'follow2', "c.name = 'Followed'") -eq 1 -and $script:Kit.Count($script:Database, 'follow2') -eq 530 } 60 | Should -BeTrue
        $script:Kit.Delete($script:Database, 'follow', 'd8', 'p8')

        $done = Complete-ContainerMove -Name follow-move -Confirm:$false
        $done.Status | Should -Be 'completed'
        $followed = $follower | Wait-Job -Timeout 90 | Receive-Job
        $follower.State | Should -Be 'Completed' -Because 'the follower returns once the cut-over stopped it'
        $followed.Target | Should -Be 'follow2'
        $script:Kit.Count($script:Database, 'follow2') | Should -Be 529
        (Get-UserContent follow2) | Should -Be (Get-UserContent follow)
    }

    It 'refuses a target that holds other data, and writes nothing' {
        $script:Kit.CreateContainer($script:Database, 'occupied', '/tenant')
        $script:Kit.Upsert($script:Database, 'occupied', '{"id":"x","tenant":"t9","pk":"t9"}')
        $status = Start-ContainerMove -Name occupied-move -Container orders -Target occupied -PartitionKey /tenant -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $status | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -Be 'TargetNotEmpty,CosmosMigrations.PowerShell.Commands.StartContainerMoveCommand'
        $script:Kit.Count($script:Database, 'occupied') | Should -Be 1
        Get-MigrationStatus -Name occupied-move -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }

    It '-WhatIf runs the preflight and creates nothing' {
        $check = Start-ContainerMove -Name whatif-move -Container orders -Target never -PartitionKey /tenant -WhatIf
        $check.GetType().FullName | Should -Be 'CosmosMigrations.Moving.MovePreflight'
        $check.Collisions | Should -Be 3
        { $script:Kit.ContainerJson($script:Database, 'never') } | Should -Throw
    }
}

Describe 'Undo-SchemaMigration of a move' {
    BeforeAll {
        New-SeededContainer 'undo-src' 400 20
        $script:UndoSource = $script:Kit.ReadAllJson($script:Database, 'undo-src', 'SELECT c.id, c._etag FROM c') | Sort-Object
    }

    It 'before the cut-over: -WhatIf deletes nothing; then the target it created, its leases and its state are removed, and the source is untouched' {
        $copied = Start-ContainerMove -Name undo-move -Container undo-src -Target undo-dst -PartitionKey /email -Confirm:$false
        $copied.Status | Should -Be 'copied'
        $script:Kit.Count($script:Database, 'undo-dst') | Should -Be 400
        $script:Kit.Count($script:Database, 'migrations-leases', "STARTSWITH(c.id, 'undo-move|')") | Should -BeGreaterThan 0
        $before = Get-MigrationStatus -Name undo-move
        $before.Undoable | Should -BeTrue
        $before.UndoBlocker | Should -BeNullOrEmpty

        $tracking = Get-Tracking undo-move
        Undo-SchemaMigration -Name undo-move -WhatIf | Should -BeNullOrEmpty
        $script:Kit.Count($script:Database, 'undo-dst') | Should -Be 400 -Because '-WhatIf deletes nothing'
        (Get-Tracking undo-move)._etag | Should -Be $tracking._etag -Because '-WhatIf writes no tracking document either'

        $undone = Undo-SchemaMigration -Name undo-move -Confirm:$false
        $undone.Status | Should -Be 'undone'
        $undone.Target | Should -Be 'undo-dst'
        $undone.Message | Should -Match "Deleted the target 'undo-dst' \(400 document\(s\) copied\)"
        $undone.Message | Should -Match "'undo-src' is untouched"
        { $script:Kit.ContainerJson($script:Database, 'undo-dst') } | Should -Throw
        $script:Kit.Count($script:Database, 'migrations-leases', "STARTSWITH(c.id, 'undo-move|')") | Should -Be 0
        Get-Tracking undo-move | Should -BeNullOrEmpty
        Get-MigrationStatus -Name undo-move -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        ($script:Kit.ReadAllJson($script:Database, 'undo-src', 'SELECT c.id, c._etag FROM c') | Sort-Object) | Should -Be $script:UndoSource

        # Undone is gone: the same move starts anew.
        (Start-ContainerMove -Name undo-move -Container undo-src -Target undo-dst -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $script:Kit.Count($script:Database, 'undo-dst') | Should -Be 400
    }

    It 'stops a following move first, then removes it' {
        $follower = Start-ConnectedJob 'Start-ContainerMove -Name undo-follow -Container undo-src -Target undo-follow-dst -PartitionKey /email -Follow -Confirm:$false'
        Wait-Until { (Get-MigrationStatus -Name undo-follow -ErrorAction SilentlyContinue).Phase -eq 'following' } 90 | Should -BeTrue

        $undone = Undo-SchemaMigration -Name undo-follow -Confirm:$false
        $undone.Status | Should -Be 'undone'
        $follower | Wait-Job -Timeout 90 | Out-Null
        $follower.State | Should -Be 'Completed' -Because 'the follower returns once the undo stopped it'
        $follower | Remove-Job -Force
        { $script:Kit.ContainerJson($script:Database, 'undo-follow-dst') } | Should -Throw
        Get-Tracking undo-follow | Should -BeNullOrEmpty
        $script:Kit.Count($script:Database, 'migrations-leases', "STARTSWITH(c.id, 'undo-follow|')") | Should -Be 0
    }

    It 'refuses a completed move with MoveCompleted, and deletes nothing' {
        (Complete-ContainerMove -Name undo-move -Confirm:$false).Status | Should -Be 'completed'
        (Get-MigrationStatus -Name undo-move).Undoable | Should -BeFalse
        (Get-MigrationStatus -Name undo-move).UndoBlocker | Should -Match 'completed'
        $result = Undo-SchemaMigration -Name undo-move -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'MoveCompleted,CosmosMigrations.PowerShell.Commands.UndoSchemaMigrationCommand'
        $failed[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $failed[0].TargetObject | Should -Be 'undo-move'
        $failed[0].ErrorDetails.RecommendedAction | Should -Match 'undo-src'
        $script:Kit.Count($script:Database, 'undo-dst') | Should -Be 400
        (Get-MigrationStatus -Name undo-move).Status | Should -Be 'completed'
    }
}

Describe 'A move''s status' {
    It 'shows the phase, the lag, the rate and the time remaining while copying; lag 0 once copied and completed' {
        # At 150 RU/s the copy of 2,000 lasts well beyond the two rate samples, however fast the machine.
        $total = 2000
        New-SeededContainer 'status-src' $total 40
        $mover = Start-ConnectedJob 'Start-ContainerMove -Name status-move -Container status-src -Target status-dst -PartitionKey /email -MaxRUPerSecond 150 -Confirm:$false'
        # Two rate samples are five seconds apart: the rate shows after the second.
        Wait-Until { $s = Get-MigrationStatus -Name status-move -ErrorAction SilentlyContinue; $s.DocumentsPerSecond -gt 0 -and $s.Lag -gt 0 } 90 | Should -BeTrue
        $copying = Get-MigrationStatus -Name status-move
        $copying.Status | Should -Be 'running'
        $copying.Phase | Should -Be 'copying'
        $copying.Target | Should -Be 'status-dst'
        $copying.Lag | Should -BeGreaterThan 0
        $copying.Lag | Should -BeLessOrEqual ($total - $copying.Scanned + 400) -Because 'the lag is what the copy has not read yet (within a batch per range of the count)'
        $copying.DocumentsPerSecond | Should -BeLessThan 400 -Because 'the copy runs at 150 RU/s'
        $copying.Remaining | Should -Not -BeNullOrEmpty
        [math]::Abs($copying.Remaining.TotalSeconds - [math]::Ceiling($copying.Lag / $copying.DocumentsPerSecond)) | Should -BeLessOrEqual 1 -Because 'the time remaining is the lag at the rate'
        ($copying | Format-List | Out-String -Width 200) | Should -Match 'Lag\s+: \d+'

        $copied = $mover | Wait-Job -Timeout 120 | Receive-Job
        $copied.Status | Should -Be 'copied'
        $copied.Lag | Should -Be 0
        $copied.Remaining | Should -Be ([TimeSpan]::Zero)
        $status = Get-MigrationStatus -Name status-move
        $status.Phase | Should -Be 'copied'
        $status.Lag | Should -Be 0
        @(Get-MigrationStatus -Status copied).Name | Should -Contain 'status-move'

        (Complete-ContainerMove -Name status-move -Confirm:$false).Status | Should -Be 'completed'
        $done = Get-MigrationStatus -Name status-move
        $done.Phase | Should -Be 'completed'
        $done.Lag | Should -Be 0
        @(Get-MigrationStatus -Status copied).Name | Should -Not -Contain 'status-move'
    }

    It 'a copied move is not rewritten by <Case>: refused with MigrationIsAMove, still copied, the source untouched' -ForEach @(
        @{ Case = 'Start-SchemaMigration -Force on its name and source'; Command = { Start-SchemaMigration -Name reopen-move -Container status-src -Operation @{ AddField = 'oops'; Value = 1 } -Force -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue }; Cmdlet = 'StartSchemaMigrationCommand' }
        @{ Case = 'Start-SchemaMigration by name'; Command = { Get-MigrationStatus -Name reopen-move | Start-SchemaMigration -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue }; Cmdlet = 'StartSchemaMigrationCommand' }
        @{ Case = 'Invoke-Backfill'; Command = { Invoke-Backfill -Name reopen-move -Container status-src -Filter 'true' -Set @{ oops = 1 } -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue }; Cmdlet = 'InvokeBackfillCommand' }
        @{ Case = 'Reset-SchemaMigration'; Command = { Reset-SchemaMigration -Name reopen-move -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue }; Cmdlet = 'ResetSchemaMigrationCommand' }
    ) {
        if (-not (Get-Tracking reopen-move)) {
            (Start-ContainerMove -Name reopen-move -Container status-src -Target reopen-dst -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        }
        $tracking = Get-Tracking reopen-move
        $source = $script:Kit.ReadAllJson($script:Database, 'status-src', 'SELECT c.id, c._etag FROM c') | Sort-Object

        $failed = $null
        $result = . $Command
        $result | Should -BeNullOrEmpty
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be "MigrationIsAMove,CosmosMigrations.PowerShell.Commands.$Cmdlet"
        $failed[0].CategoryInfo.Category | Should -Be 'InvalidOperation'
        $failed[0].ErrorDetails.RecommendedAction | Should -Match 'Start-ContainerMove -Name reopen-move'
        (Get-Tracking reopen-move)._etag | Should -Be $tracking._etag -Because 'the move''s tracking document is not rewritten'
        (Get-MigrationStatus -Name reopen-move).Status | Should -Be 'copied'
        ($script:Kit.ReadAllJson($script:Database, 'status-src', 'SELECT c.id, c._etag FROM c') | Sort-Object) | Should -Be $source
    }
}

Describe 'Complete-ContainerMove -Sample' {
    It 'compares the counts and documents drawn at random: finds a document that differs, then completes once it is equal' {
        New-SeededContainer 'sample-src' 600 20
        (Start-ContainerMove -Name sample-move -Container sample-src -Target sample-dst -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $copy = $script:Kit.ReadAllJson($script:Database, 'sample-dst', "SELECT c.email, c.name FROM c WHERE c.id = 'd5'") | ConvertFrom-Json
        $script:Kit.PatchField($script:Database, 'sample-dst', 'd5', $copy.email, 'name', 'tampered')

        # A sample as large as the container takes every document: the tampered one is found.
        $failed = $null
        $status = Complete-ContainerMove -Name sample-move -Sample 1000 -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $status.Status | Should -Be 'copied'
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -Be 'MoveVerificationFailed,CosmosMigrations.PowerShell.Commands.CompleteContainerMoveCommand'
        $failed[0].Exception.Message | Should -Match '600 document\(s\) against 600; 600 document\(s\) sampled at random, 1 differ \(e\.g\. d5\)'

        $script:Kit.PatchField($script:Database, 'sample-dst', 'd5', $copy.email, 'name', $copy.name)
        $done = Complete-ContainerMove -Name sample-move -Sample 50 -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Message | Should -Match 'same 600 document\(s\) .*50 document\(s\) sampled at random, all equal'
        $record = (Get-Tracking sample-move).move
        $record.sampled | Should -Be 50
        $record.verifiedDocuments | Should -Be 600
        $record.PSObject.Properties.Name | Should -Not -Contain 'digest'
    }

    It 'refuses a sample out of range before anything runs' {
        { Complete-ContainerMove -Name sample-move -Sample 0 -Confirm:$false } | Should -Throw -ErrorId 'ParameterArgumentValidationError,CosmosMigrations.PowerShell.Commands.CompleteContainerMoveCommand'
    }
}

Describe 'Complete-ContainerMove -ReverseSync' {
    It 'after the cut-over, copies what is written to the target back into the source until stopped, and nothing else' {
        New-SeededContainer 'rev-src' 300 10
        (Start-ContainerMove -Name rev-move -Container rev-src -Target rev-dst -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        # The reverse sync reads the target from a second before the cut-over (seconds resolution):
        # the copy's own writes are older than that.
        Start-Sleep -Seconds 2
        $window = Start-ConnectedJob 'Complete-ContainerMove -Name rev-move -ReverseSync -LeaseDuration 00:00:06 -Confirm:$false'
        Wait-Until { (Get-MigrationStatus -Name rev-move-reverse -ErrorAction SilentlyContinue).Status -eq 'running' } 90 | Should -BeTrue
        (Get-MigrationStatus -Name rev-move).Status | Should -Be 'completed'
        $before = $script:Kit.ReadAllJson($script:Database, 'rev-src', "SELECT c.id, c._etag FROM c WHERE c.id != 'd10'") | Sort-Object
        # The feed's start time has a resolution of seconds: the application's writes come later.
        Start-Sleep -Seconds 2

        # The new application version writes to the target.
        $d10 = $script:Kit.ReadAllJson($script:Database, 'rev-dst', "SELECT c.email FROM c WHERE c.id = 'd10'") | ConvertFrom-Json
        $script:Kit.PatchField($script:Database, 'rev-dst', 'd10', $d10.email, 'name', 'Written after the cut-over')
        # (The kit's upsert takes the partition key from pk: here pk and email, the target's key, agree.)
        $script:Kit.Upsert($script:Database, 'rev-dst', '{"id":"new1","pk":"new1@example.com","email":"new1@example.com","name":"New after the cut-over"}')
        Wait-Until { $script:Kit.Count($script:Database, 'rev-src', "c.id = 'd10' AND c.name = 'Written after the cut-over'") -eq 1 -and $script:Kit.Count($script:Database, 'rev-src', "c.id = 'new1'") -eq 1 } 60 | Should -BeTrue

        Stop-SchemaMigration -Name rev-move-reverse
        $out = @($window | Wait-Job -Timeout 90 | Receive-Job)
        $window.State | Should -Be 'Completed' -Because 'the reverse sync returns once stopped'
        $out[0].Name | Should -Be 'rev-move'
        $out[0].Status | Should -Be 'completed'
        $out[1].Name | Should -Be 'rev-move-reverse'
        $out[1].Target | Should -Be 'rev-src'
        # Stopped while following it ends copied; before its catch-up watch saw every range read
        # (a feed read from a start time keeps the watch's placeholder lag), cancelled: both resume.
        $out[1].Status | Should -BeIn @('copied', 'cancelled')
        (Get-Tracking rev-move-reverse).move.createdTarget | Should -BeFalse
        $script:Kit.Count($script:Database, 'rev-src') | Should -Be 301
        ($script:Kit.ReadAllJson($script:Database, 'rev-src', "SELECT c.id, c._etag FROM c WHERE c.id != 'd10' AND c.id != 'new1'") | Sort-Object) | Should -Be $before -Because 'only what was written to the target after the cut-over is written back'
    }

    It 'refuses -ReverseSync for a move that does not exist, and starts nothing' {
        $failed = $null
        $result = Complete-ContainerMove -Name no-such-move -ReverseSync -Confirm:$false -ErrorVariable failed -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -Be 'MigrationNotFound,CosmosMigrations.PowerShell.Commands.CompleteContainerMoveCommand'
        Get-MigrationStatus -Name no-such-move-reverse -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
    }
}
