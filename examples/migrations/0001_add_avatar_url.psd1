@{
    Name        = '0001_add_avatar_url'
    Container   = 'users'
    Description = 'Give every user an avatarUrl (optional in the app first; required once backfilled)'
    Operations  = @(
        @{ AddField = 'avatarUrl'; Template = 'https://api.dicebear.com/7.x/initials/svg?seed={name:uri}' }
    )
}
