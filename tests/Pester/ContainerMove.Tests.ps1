# Moving a container to a new partition key, through the module, on a server of several ranges:
# the preflight (Test-ContainerMove), the copy (Start-ContainerMove) and the cut-over
# (Complete-ContainerMove).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Database = New-TestDatabase
    Connect-Test $script:Database

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

AfterAll { $script:Kit.DeleteDatabase($script:Database) }

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
        ($check.Problems -join ' ') | Should -Match 'repeat an id'
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
