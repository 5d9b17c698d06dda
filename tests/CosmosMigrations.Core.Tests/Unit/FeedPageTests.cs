using System.IO;
using System.Text;
using CosmosMigrations.Documents;

namespace CosmosMigrations.Tests.Unit;

/// <summary>A change feed page read as bytes builds the same documents as the whole-page reader,
/// finds ids and ETags without building any, and builds only the properties asked for.</summary>
public sealed class FeedPageTests
{
    private const string Page = """
        {"_rid":"abc","Documents":[
          {"id":"a","tenant":"t1","when":"2024-01-02T03:04:05Z","n":1,"big":123456789012345678901234567890,"f":1.0,"e":1e3,"neg":-0,"t":true,"x":false,"z":null,
           "s":"quote \" slash \\ tab \t unicode \u00e9 \ud83d\ude00","nested":{"deep":[1,[2,{"k":"v"}],{}],"empty":[]},"dup":1,"dup":2,"_etag":"\"0001\"","_lsn":17,"_ts":1700000000},
          {"tenant":"t2","id":"b","_etag":"\"0002\"","payload":{"id":"not-this-one","_etag":"nor this"}},
          42,
          {"_etag":"\"0003\""}
        ],"_count":4}
        """;

    private static MemoryStream Bytes(string json) => new(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void Builds_the_documents_the_whole_page_reader_builds()
    {
        var expected = DocumentJson.ReadPage(Bytes(Page)).ToList();
        using var page = FeedPage.Read(Bytes(Page));

        Assert.Equal(expected.Count, page.Items.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i] is JObject, page.Items[i].IsDocument);
            if (expected[i] is JObject document)
            {
                var built = page.Load(page.Items[i]);
                Assert.True(JToken.DeepEquals(document, built), $"item {i}: {built}");
                // Written back the same, value types included (an integer stays an integer, a date a string).
                Assert.Equal(document.ToString(Newtonsoft.Json.Formatting.None), built.ToString(Newtonsoft.Json.Formatting.None));
            }
        }
    }

    [Fact]
    public void Finds_top_level_ids_and_etags_only()
    {
        using var page = FeedPage.Read(Bytes(Page));

        Assert.Equal(new[] { "a", "b", "", "" }, page.Items.Select(i => i.Id));
        Assert.Equal(new[] { "\"0001\"", "\"0002\"", null, "\"0003\"" }, page.Items.Select(i => i.ETag));
    }

    [Fact]
    public void Builds_only_the_properties_asked_for()
    {
        using var page = FeedPage.Read(Bytes(Page));

        var built = page.Load(page.Items[0], new HashSet<string>(StringComparer.Ordinal) { "id", "_etag", "tenant", "nested" });

        Assert.Equal(new[] { "id", "tenant", "nested", "_etag" }, built.Properties().Select(p => p.Name));
        Assert.Equal("v", (string?)built["nested"]!["deep"]![1]![1]!["k"]);
    }

    [Fact]
    public void Reads_pages_larger_than_its_first_buffer_from_unseekable_streams()
    {
        var items = Enumerable.Range(0, 2000).Select(i => $"{{\"id\":\"d{i}\",\"pad\":\"{new string('x', 100)}\",\"_etag\":\"e{i}\"}}");
        var json = "{\"Documents\":[" + string.Join(",", items) + "]}";
        using var page = FeedPage.Read(new Unseekable(Encoding.UTF8.GetBytes(json)));

        Assert.Equal(2000, page.Items.Count);
        Assert.Equal("e1999", page.Items[1999].ETag);
        Assert.Equal("d1234", (string?)page.Load(page.Items[1234])["id"]);
    }

    [Fact]
    public void An_empty_page_has_no_items()
    {
        using var page = FeedPage.Read(Bytes("{\"_rid\":\"r\",\"Documents\":[],\"_count\":0}"));

        Assert.Empty(page.Items);
    }

    private sealed class Unseekable(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();
    }
}
