using CosmosMigrations.Documents;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Tests.Unit;

public sealed class FieldPathTests
{
    [Theory]
    [InlineData("avatarUrl", "c[\"avatarUrl\"]", "/avatarUrl")]
    [InlineData("settings.theme", "c[\"settings\"][\"theme\"]", "/settings/theme")]
    [InlineData("a[\"b.c\"].d", "c[\"a\"][\"b.c\"][\"d\"]", "/a/b.c/d")]
    [InlineData("with space", "c[\"with space\"]", "/with space")]
    [InlineData("select", "c[\"select\"]", "/select")]
    [InlineData("a/b~c", "c[\"a/b~c\"]", "/a~1b~0c")]
    public void Renders_every_segment_escaped(string text, string sql, string pointer)
    {
        var path = FieldPath.Parse(text);
        Assert.Equal(sql, path.ToSql());
        Assert.Equal(pointer, path.ToJsonPointer());
    }

    [Fact]
    public void Quotes_and_injection_attempts_stay_inside_the_string_literal()
    {
        // Unquoted, a bracket cannot open a segment: rejected.
        Assert.Throws<MigrationException>(() => FieldPath.Parse("x\"] OR 1=1 OR c[\"y"));
        // Quoted, the same text is one field name: neutralised inside the literal.
        var path = FieldPath.Parse("[\"x\\\"] OR 1=1 OR c[\\\"y\"]");
        Assert.Equal("x\"] OR 1=1 OR c[\"y", Assert.Single(path.Segments));
        Assert.Equal("c[\"x\\\"] OR 1=1 OR c[\\\"y\"]", path.ToSql());
        Assert.Equal("c[\"it\\u0027s\"]", FieldPath.Parse("it's").ToSql());
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData(".a")]
    [InlineData("a.")]
    [InlineData("a[b]")]
    [InlineData("a[\"b\"")]
    public void Rejects_malformed_paths(string text)
    {
        var error = Assert.Throws<MigrationException>(() => FieldPath.Parse(text));
        Assert.Equal("InvalidFieldPath", error.ErrorId);
    }

    [Theory]
    [InlineData("id")]
    [InlineData("_etag")]
    [InlineData("_ts")]
    public void System_properties_cannot_be_written(string text)
    {
        Assert.Throws<MigrationException>(() => FieldPath.Parse(text).EnsureWritable());
    }
}
