@{
    Name        = '0007_require_user_fields'
    Container   = 'users'
    Description = 'Verify before the application relies on the new fields'
    Operations  = @(
        @{ RequireField = 'avatarUrl'; Type = 'string' }
        @{ RequireField = 'createdAt'; Type = 'number' }
        @{ RequireField = 'updatedAt'; Type = 'number' }
        @{ RequireField = 'displayName'; Type = 'string' }
    )
}
