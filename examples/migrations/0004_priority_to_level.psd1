@{
    Name        = '0004_priority_to_level'
    Container   = 'posts'
    Description = 'Change a type through a new field: priority (low/medium/high) to priorityLevel (1/2/3)'
    Operations  = @(
        @{ ConvertField = 'priority'; To = 'priorityLevel'; Map = @{ low = 1; medium = 2; high = 3 }; Default = 1 }
    )
}
