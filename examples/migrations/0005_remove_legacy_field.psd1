@{
    Name        = '0005_remove_legacy_field'
    Container   = 'posts'
    Description = 'Contract: no reader uses legacyField any more'
    Operations  = @(
        @{ RemoveField = 'legacyField' }
    )
}
