using CosmosMigrations.Errors;

namespace CosmosMigrations.Connection;

/// <summary>Parses <c>AccountEndpoint=…;AccountKey=…;</c>. Errors name the missing part, never the value.</summary>
internal static class ConnectionStringParser
{
    public sealed record Parts(string Endpoint, string Key, bool DisableServerCertificateValidation, string? Database);

    public static Parts Parse(string connectionString)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in (connectionString ?? string.Empty).Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0)
            {
                if (part.Trim().Length == 0)
                {
                    continue;
                }

                throw Invalid("A part of it is not of the form Name=Value.");
            }

            // Values (a base64 key) may themselves contain '='.
            values[part.Substring(0, eq).Trim()] = part.Substring(eq + 1).Trim();
        }

        if (!values.TryGetValue("AccountEndpoint", out var endpoint) || endpoint.Length == 0)
        {
            throw Invalid("It has no AccountEndpoint.");
        }

        if (!values.TryGetValue("AccountKey", out var key) || key.Length == 0)
        {
            throw Invalid("It has no AccountKey.");
        }

        var disable = values.TryGetValue("DisableServerCertificateValidation", out var flag) &&
                      string.Equals(flag, "true", StringComparison.OrdinalIgnoreCase);
        values.TryGetValue("Database", out var database);
        return new Parts(endpoint, key, disable, database);
    }

    private static MigrationException Invalid(string why) =>
        new(MigrationErrorKind.InvalidArgument, "InvalidConnectionString", $"The connection string is not valid. {why}", "ConnectionString",
            "Copy the primary connection string from the account's Keys page: AccountEndpoint=https://…;AccountKey=…;");
}
