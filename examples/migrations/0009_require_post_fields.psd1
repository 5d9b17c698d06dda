@{
    Name        = '0009_require_post_fields'
    Container   = 'posts'
    Description = 'Verify before the application relies on priorityLevel'
    Operations  = @(
        @{ RequireField = 'priorityLevel'; Type = 'number' }
    )
}
