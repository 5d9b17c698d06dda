@{
    Name        = '0003_copy_username_to_displayname'
    Container   = 'users'
    Description = 'Expand: copy userName to displayName; userName stays for readers not yet updated'
    Operations  = @(
        @{ RenameField = 'userName'; To = 'displayName'; KeepSource = $true }
    )
}
