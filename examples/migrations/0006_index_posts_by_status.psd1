@{
    Name        = '0006_index_posts_by_status'
    Container   = 'posts'
    Description = 'Add the index before any query uses ORDER BY status, publishedAt DESC'
    Operations  = @(
        @{ AddIndex = @('status ASC', 'publishedAt DESC'); Timeout = 600 }
    )
}
