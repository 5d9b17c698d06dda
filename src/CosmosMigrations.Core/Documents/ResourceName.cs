using CosmosMigrations.Errors;

namespace CosmosMigrations.Documents;

/// <summary>The one naming rule, that of Cosmos DB resource ids, for everything the module names
/// in the account: containers, and migrations (a migration's name is its tracking document's id).</summary>
internal static class ResourceName
{
    private static readonly char[] Forbidden = { '/', '\\', '?', '#' };

    /// <summary>1–255 characters, none of '/', '\', '?', '#', no leading or trailing space.</summary>
    public static bool IsValid(string? name) =>
        !string.IsNullOrWhiteSpace(name) && name!.Length <= 255 && name.IndexOfAny(Forbidden) < 0 && name.Trim() == name;

    /// <summary>Throws InvalidResourceName unless <paramref name="name"/> is valid; <paramref name="what"/> says what it names.</summary>
    public static void Validate(string? name, string what)
    {
        if (!IsValid(name))
        {
            throw new MigrationException(MigrationErrorKind.InvalidArgument, "InvalidResourceName",
                $"'{name}' is not a valid {what} name: it must be 1–255 characters without '/', '\\', '?', '#' or a leading or trailing space.", name,
                $"Check the {what} name.");
        }
    }
}
