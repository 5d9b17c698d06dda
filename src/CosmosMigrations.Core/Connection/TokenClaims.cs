using System.Text;

namespace CosmosMigrations.Connection;

/// <summary>What a Microsoft Entra ID access token says about itself, read from its payload (a
/// JWT's middle part) without verifying it: the service verifies; the module only needs the expiry
/// (to refuse an expired token before a request) and who it names (for messages and the fix of a
/// missing role). Never holds the token itself.</summary>
internal sealed class TokenClaims
{
    private TokenClaims()
    {
    }

    /// <summary>The "exp" claim; null when the token is not a JWT or carries none.</summary>
    public DateTimeOffset? ExpiresOn { get; private set; }

    /// <summary>The principal's object id ("oid"), the id a role assignment names.</summary>
    public string? ObjectId { get; private set; }

    /// <summary>A name a person recognises: upn, unique_name, preferred_username, or the app id.</summary>
    public string? Name { get; private set; }

    public string? TenantId { get; private set; }

    /// <summary>"user@contoso.com (object id …)", or what of it is known; null when nothing is.</summary>
    public string? Describe()
    {
        if (Name is null && ObjectId is null)
        {
            return null;
        }

        if (Name is null)
        {
            return $"object id {ObjectId}";
        }

        return ObjectId is null || string.Equals(Name, ObjectId, StringComparison.OrdinalIgnoreCase) ? Name : $"{Name} (object id {ObjectId})";
    }

    /// <summary>The claims of <paramref name="token"/>; an opaque (non-JWT) token gives empty claims.</summary>
    public static TokenClaims Read(string token)
    {
        var claims = new TokenClaims();
        var parts = (token ?? string.Empty).Split('.');
        if (parts.Length < 2)
        {
            return claims;
        }

        JObject payload;
        try
        {
            payload = JObject.Parse(Encoding.UTF8.GetString(FromBase64Url(parts[1])));
        }
        catch (Exception ex) when (ex is FormatException or Newtonsoft.Json.JsonException or ArgumentException)
        {
            return claims;
        }

        if (payload["exp"] is JValue { Type: JTokenType.Integer or JTokenType.Float } exp)
        {
            claims.ExpiresOn = DateTimeOffset.FromUnixTimeSeconds(Convert.ToInt64(exp.Value, System.Globalization.CultureInfo.InvariantCulture));
        }

        claims.ObjectId = Text(payload, "oid");
        claims.TenantId = Text(payload, "tid");
        claims.Name = Text(payload, "upn") ?? Text(payload, "unique_name") ?? Text(payload, "preferred_username") ?? Text(payload, "appid") ?? Text(payload, "azp");
        return claims;
    }

    private static string? Text(JObject payload, string name) =>
        payload[name] is JValue { Type: JTokenType.String } value && value.Value is string text && text.Length > 0 ? text : null;

    private static byte[] FromBase64Url(string value)
    {
        var text = value.Replace('-', '+').Replace('_', '/');
        switch (text.Length % 4)
        {
            case 2: text += "=="; break;
            case 3: text += "="; break;
            case 1: throw new FormatException("Not base64url.");
        }

        return Convert.FromBase64String(text);
    }
}
