@{
    Name        = '0008_drop_username'
    Container   = 'users'
    Description = 'Contract: every reader uses displayName now'
    Operations  = @(
        @{ RemoveField = 'userName' }
    )
}
