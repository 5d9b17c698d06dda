# How a move carries deletes: from the source's all-versions-and-deletes change feed while it copies
# and follows, where the source serves that feed (on the local server: a container with a change
# feed retention, the emulator's opt-in; tests/LocalCosmos/changelog.js), else at the cut-over's
# reconciliation; and the same for -ReverseSync, from the target back into the source.
BeforeDiscovery { $script:IsHarness = $env:COSMOSMIGRATIONS_HARNESS -eq '1' }

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Initialize-TestDatabase

    # A source whose change feed has all versions and deletes.
    function New-AllVersionsContainer([string] $Name) {
        $definition = @{ id = $Name; partitionKey = @{ paths = @('/pk'); kind = 'Hash' }; changeFeedPolicy = @{ retentionDuration = 10 } }
        $script:Kit.CreateContainerFromJson($script:Database, ($definition | ConvertTo-Json -Depth 5 -Compress))
    }


    function Get-DeletesCheckpoint([string] $Move) {
        $script:Kit.ReadAllJson($script:Database, 'migrations-leases', "SELECT * FROM c WHERE c.id = '$Move|deletes'") | ConvertFrom-Json
    }
}

AfterAll { Remove-TestDatabase }

Describe 'Start-ContainerMove and deletes' {
    It 'with the all-versions-and-deletes feed: deletes made while copying and while following reach the target before the cut-over' {
        New-AllVersionsContainer 'avad'
        $script:Kit.Seed($script:Database, 'avad', 2000, 40, 0, $null)
        $follower = Start-ConnectedJob 'Start-ContainerMove -Name avad-move -Container avad -Target avad2 -PartitionKey /email -Follow -Confirm:$false'

        # While it copies: 100 deletes.
        Wait-Until { (Get-MigrationStatus -Name avad-move -ErrorAction SilentlyContinue).Status -eq 'running' } 90 | Should -BeTrue
        foreach ($i in 0..99) { $script:Kit.Delete($script:Database, 'avad', "d$i", "p$($i % 40)") }
        Wait-Until { (Get-MigrationStatus -Name avad-move -ErrorAction SilentlyContinue).Phase -eq 'following' } 120 | Should -BeTrue
        (Get-MigrationStatus -Name avad-move).Deletes | Should -Be 'AllVersionsAndDeletes feed'
        Wait-Until { $script:Kit.Count($script:Database, 'avad2') -eq 1900 } 30 | Should -BeTrue -Because 'the deletes made while copying were carried before the cut-over'

        # While it follows: 20 more, each in the target within a poll of the feed.
        $clock = [Diagnostics.Stopwatch]::StartNew()
        foreach ($i in 100..119) { $script:Kit.Delete($script:Database, 'avad', "d$i", "p$($i % 40)") }
        Wait-Until { $script:Kit.Count($script:Database, 'avad2', "c.id IN ('d100', 'd119')") -eq 0 -and $script:Kit.Count($script:Database, 'avad2') -eq 1880 } 30 | Should -BeTrue
        Write-Host "20 deletes in the source reached the target within $([math]::Round($clock.Elapsed.TotalSeconds, 2)) s"
        $checkpoint = Get-DeletesCheckpoint avad-move
        $checkpoint.deleted | Should -BeGreaterOrEqual 20
        Write-Host "deletes feed: $($checkpoint.seen) seen, $($checkpoint.deleted) deleted from the target, on average $([math]::Round($checkpoint.latencyMsTotal / [math]::Max(1, $checkpoint.deleted))) ms after the source's delete (at most $($checkpoint.latencyMsMax) ms)"

        $done = Complete-ContainerMove -Name avad-move -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Message | Should -Match 'carried by the all-versions-and-deletes feed'
        $followed = $follower | Wait-Job -Timeout 90 | Receive-Job
        $follower.State | Should -Be 'Completed'
        $followed.Deletes | Should -Be 'AllVersionsAndDeletes feed'
        $script:Kit.Count($script:Database, 'avad2') | Should -Be 1880
        (Get-UserContent avad2) | Should -Be (Get-UserContent avad)
        $record = (Get-Tracking avad-move).move
        $record.deletes | Should -Be 'AllVersionsAndDeletes feed'
        $record.deletesCarried + $record.deletesReconciled | Should -BeLessOrEqual 120 -Because 'a document deleted before the copy reached it is never copied, so never deleted from the target'
        $record.deletesCarried | Should -BeGreaterOrEqual 20
    }

    It 'without it (the source answers 400): says so, leaves the deletes to the cut-over, and reconciles them there' {
        New-SeededContainer 'plain' 300 10
        $copied = Start-ContainerMove -Name plain-move -Container plain -Target plain2 -PartitionKey /email -Confirm:$false
        $copied.Status | Should -Be 'copied'
        $copied.Deletes | Should -Be 'Reconciled at cut-over'
        foreach ($i in 0..9) { $script:Kit.Delete($script:Database, 'plain', "d$i", "p$($i % 10)") }
        (Start-ContainerMove -Name plain-move -Container plain -Target plain2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $script:Kit.Count($script:Database, 'plain2') | Should -Be 300 -Because 'the latest-version feed does not carry deletes'
        Get-DeletesCheckpoint plain-move | Should -BeNullOrEmpty

        $done = Complete-ContainerMove -Name plain-move -Confirm:$false
        $done.Status | Should -Be 'completed'
        $done.Message | Should -Not -Match 'all-versions'
        $done.Message | Should -Match '10 delete\(s\) reconciled'
        $script:Kit.Count($script:Database, 'plain2') | Should -Be 290
        (Get-Tracking plain-move).move.deletes | Should -Be 'Reconciled at cut-over'
    }

    It 'a move resumed later goes on from its anchor: deletes made while no process ran are carried' {
        New-AllVersionsContainer 'resume'
        $script:Kit.Seed($script:Database, 'resume', 200, 10, 0, $null)
        (Start-ContainerMove -Name resume-move -Container resume -Target resume2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $anchor = (Get-DeletesCheckpoint resume-move).anchoredAt
        foreach ($i in 0..4) { $script:Kit.Delete($script:Database, 'resume', "d$i", "p$($i % 10)") }
        $script:Kit.Count($script:Database, 'resume2') | Should -Be 200

        (Start-ContainerMove -Name resume-move -Container resume -Target resume2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $script:Kit.Count($script:Database, 'resume2') | Should -Be 195 -Because 'the resumed move read the feed from where it stood, not from a new "now"'
        (Get-DeletesCheckpoint resume-move).anchoredAt | Should -Be $anchor
        (Complete-ContainerMove -Name resume-move -Confirm:$false).Message | Should -Match '5 delete\(s\) carried by the all-versions-and-deletes feed, 0 delete\(s\) reconciled'
    }

    It 'a move left longer than the feed''s retention warns, follows the deletes again from now, and the cut-over reconciles what the feed no longer held' -Skip:(-not $script:IsHarness) {
        New-AllVersionsContainer 'gap'
        $script:Kit.Seed($script:Database, 'gap', 200, 10, 0, $null)
        (Start-ContainerMove -Name gap-move -Container gap -Target gap2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        # While no process runs: 5 deletes, then the retention window passes over them.
        foreach ($i in 0..4) { $script:Kit.Delete($script:Database, 'gap', "d$i", "p$($i % 10)") }
        ($script:Kit.ExpireChangeLog($script:Database, 'gap') | ConvertFrom-Json).dropped | Should -BeGreaterOrEqual 5

        $resumed = Start-ContainerMove -Name gap-move -Container gap -Target gap2 -PartitionKey /email -Confirm:$false -WarningVariable warned -WarningAction SilentlyContinue
        $resumed.Status | Should -Be 'copied'
        "$warned" | Should -Match "The deletes of 'gap' could not be read on from where 'gap-move' left them: that position .* is older than the feed's retention .*They are followed again from now\. Those made in between reach 'gap2' at the cut-over"
        (Get-DeletesCheckpoint gap-move).reanchored | Should -Be 1
        $script:Kit.Count($script:Database, 'gap2') | Should -Be 200 -Because 'the feed no longer held those deletes'

        # Followed again: a delete now is carried before the cut-over; the five before, at it.
        $script:Kit.Delete($script:Database, 'gap', 'd7', 'p7')
        (Start-ContainerMove -Name gap-move -Container gap -Target gap2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        $script:Kit.Count($script:Database, 'gap2', "c.id = 'd7'") | Should -Be 0
        (Complete-ContainerMove -Name gap-move -Confirm:$false).Message | Should -Match '1 delete\(s\) carried by the all-versions-and-deletes feed, 5 delete\(s\) reconciled'
        $script:Kit.Count($script:Database, 'gap2') | Should -Be 194
    }

    It 'Undo-SchemaMigration removes the deletes checkpoint with the move' {
        New-AllVersionsContainer 'undone'
        $script:Kit.Seed($script:Database, 'undone', 50, 5, 0, $null)
        (Start-ContainerMove -Name undone-move -Container undone -Target undone2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        Get-DeletesCheckpoint undone-move | Should -Not -BeNullOrEmpty
        Undo-SchemaMigration -Name undone-move -Confirm:$false | Out-Null
        Get-DeletesCheckpoint undone-move | Should -BeNullOrEmpty
    }
}

Describe 'Complete-ContainerMove -ReverseSync and deletes' {
    It 'carries a delete in the target back into the source, from the target''s all-versions-and-deletes feed' {
        New-AllVersionsContainer 'back'
        $script:Kit.Seed($script:Database, 'back', 100, 10, 0, $null)
        (Start-ContainerMove -Name back-move -Container back -Target back2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        ($script:Kit.ContainerJson($script:Database, 'back2') | ConvertFrom-Json).changeFeedPolicy.retentionDuration | Should -Be 10 -Because 'the target gets the source''s change feed policy'
        $window = Start-ConnectedJob 'Complete-ContainerMove -Name back-move -ReverseSync -LeaseDuration 00:00:06 -Confirm:$false'
        # Running, and its record written (a moment after its tracking document).
        Wait-Until { $reverse = Get-MigrationStatus -Name back-move-reverse -ErrorAction SilentlyContinue; $reverse.Status -eq 'running' -and $reverse.Deletes } 90 | Should -BeTrue
        (Get-MigrationStatus -Name back-move-reverse).Deletes | Should -Be 'AllVersionsAndDeletes feed'

        # The new application version deletes a document in the target.
        $d3 = $script:Kit.ReadAllJson($script:Database, 'back2', "SELECT c.email FROM c WHERE c.id = 'd3'") | ConvertFrom-Json
        $script:Kit.Delete($script:Database, 'back2', 'd3', $d3.email)
        Wait-Until { $script:Kit.Count($script:Database, 'back', "c.id = 'd3'") -eq 0 } 30 | Should -BeTrue -Because 'the delete went back into the source'

        Stop-SchemaMigration -Name back-move-reverse
        $out = @($window | Wait-Job -Timeout 90 | Receive-Job)
        $window.State | Should -Be 'Completed'
        $out[1].Name | Should -Be 'back-move-reverse'
        $out[1].Deletes | Should -Be 'AllVersionsAndDeletes feed'
        $script:Kit.Count($script:Database, 'back') | Should -Be 99
        (Get-DeletesCheckpoint back-move-reverse).deleted | Should -Be 1
    }

    It 'carries a delete made between the cut-over and the reverse sync''s start (its feed is anchored at the cut-over)' {
        New-AllVersionsContainer 'late'
        $script:Kit.Seed($script:Database, 'late', 100, 10, 0, $null)
        (Start-ContainerMove -Name late-move -Container late -Target late2 -PartitionKey /email -Confirm:$false).Status | Should -Be 'copied'
        (Complete-ContainerMove -Name late-move -Confirm:$false).Status | Should -Be 'completed'
        Get-DeletesCheckpoint late-move-reverse | Should -Not -BeNullOrEmpty -Because 'the cut-over anchors where a reverse sync follows the target''s deletes from'

        # The application, on the target now, deletes a document before anyone opens a rollback window.
        $d5 = $script:Kit.ReadAllJson($script:Database, 'late2', "SELECT c.email FROM c WHERE c.id = 'd5'") | ConvertFrom-Json
        $script:Kit.Delete($script:Database, 'late2', 'd5', $d5.email)
        $window = Start-ConnectedJob 'Complete-ContainerMove -Name late-move -ReverseSync -LeaseDuration 00:00:06 -Confirm:$false'
        Wait-Until { $script:Kit.Count($script:Database, 'late', "c.id = 'd5'") -eq 0 } 90 | Should -BeTrue -Because 'the delete went back into the source'

        Stop-SchemaMigration -Name late-move-reverse
        $null = $window | Wait-Job -Timeout 90
        $window.State | Should -Be 'Completed'
        $script:Kit.Count($script:Database, 'late') | Should -Be 99
        (Get-DeletesCheckpoint late-move-reverse).deleted | Should -Be 1
    }
}
