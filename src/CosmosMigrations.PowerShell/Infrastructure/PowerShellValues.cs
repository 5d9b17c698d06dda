using System.Collections.Specialized;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Strips PowerShell's wrappers from values before they reach the Core: PSObject to its
/// base object, PSCustomObject to an ordered dictionary, recursively. Nothing PowerShell adds
/// (type names, note properties of display) ends up in a stored document.</summary>
internal static class PowerShellValues
{
    public static object? Unwrap(object? value)
    {
        if (value is PSObject wrapped)
        {
            if (wrapped.BaseObject is PSCustomObject)
            {
                var dictionary = new OrderedDictionary();
                foreach (var property in wrapped.Properties.Where(p => p.MemberType == PSMemberTypes.NoteProperty))
                {
                    dictionary[property.Name] = Unwrap(property.Value);
                }

                return dictionary;
            }

            value = wrapped.BaseObject;
        }

        switch (value)
        {
            case null:
            case string:
                return value;
            case IDictionary table:
                var copy = new OrderedDictionary();
                foreach (DictionaryEntry entry in table)
                {
                    copy[Unwrap(entry.Key) ?? string.Empty] = Unwrap(entry.Value);
                }

                return copy;
            case IEnumerable sequence:
                return sequence.Cast<object?>().Select(Unwrap).ToArray();
            default:
                return value;
        }
    }
}
