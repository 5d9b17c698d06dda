using System.Text;
using CosmosMigrations.Connection;

namespace CosmosMigrations.Tests.Unit;

/// <summary>What the module reads from an access token it is handed: the expiry (to refuse an
/// expired token before a request) and who it names (for the missing-role message).</summary>
public sealed class TokenClaimsTests
{
    private static string Jwt(string payloadJson)
    {
        static string Part(string json) => Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        return Part("{\"alg\":\"RS256\",\"typ\":\"JWT\"}") + "." + Part(payloadJson) + ".c2lnbmF0dXJl";
    }

    [Fact]
    public void Reads_the_expiry_the_object_id_and_a_name_a_person_recognises()
    {
        var claims = TokenClaims.Read(Jwt("{\"exp\":1900000000,\"oid\":\"11111111-2222-3333-4444-555555555555\",\"upn\":\"ann@contoso.com\",\"tid\":\"t1\"}"));

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1900000000), claims.ExpiresOn);
        Assert.Equal("11111111-2222-3333-4444-555555555555", claims.ObjectId);
        Assert.Equal("t1", claims.TenantId);
        Assert.Equal("ann@contoso.com (object id 11111111-2222-3333-4444-555555555555)", claims.Describe());
    }

    [Theory]
    // Payload lengths that leave 0, 1 and 2 padding characters off the base64url text.
    [InlineData("{\"exp\":1,\"appid\":\"a\"}")]
    [InlineData("{\"exp\":1,\"appid\":\"ab\"}")]
    [InlineData("{\"exp\":1,\"appid\":\"abc\"}")]
    public void Reads_base64url_payloads_whatever_padding_was_left_off(string payload)
    {
        var claims = TokenClaims.Read(Jwt(payload));

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1), claims.ExpiresOn);
        Assert.StartsWith("a", claims.Name);
    }

    [Fact]
    public void A_service_principal_is_named_by_its_app_id_and_an_object_id_alone_is_said_so()
    {
        Assert.Equal("app-1", TokenClaims.Read(Jwt("{\"appid\":\"app-1\"}")).Describe());
        Assert.Equal("object id o-1", TokenClaims.Read(Jwt("{\"oid\":\"o-1\"}")).Describe());
    }

    [Theory]
    [InlineData("")]
    [InlineData("opaque-token-without-dots")]
    [InlineData("a.!!!not-base64!!!.c")]
    [InlineData("a.bm90IGpzb24.c")]
    public void An_opaque_or_malformed_token_gives_empty_claims_not_an_exception(string token)
    {
        var claims = TokenClaims.Read(token);

        Assert.Null(claims.ExpiresOn);
        Assert.Null(claims.ObjectId);
        Assert.Null(claims.Describe());
    }
}
