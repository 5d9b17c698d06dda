@{
    Name        = '0002_add_timestamps'
    Container   = 'users'
    Description = 'createdAt and updatedAt, from the last-modified time the service keeps (_ts, seconds)'
    Operations  = @(
        @{ AddField = 'createdAt'; CopyFrom = '_ts' }
        @{ AddField = 'updatedAt'; CopyFrom = '_ts' }
    )
}
