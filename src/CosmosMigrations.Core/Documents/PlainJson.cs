using System.Collections;
using System.Collections.Specialized;
using CosmosMigrations.Errors;

namespace CosmosMigrations.Documents;

/// <summary>Converts between JSON and plain .NET values (dictionaries, lists, primitives): what a
/// PowerShell hashtable holds once the cmdlet layer has unwrapped its PSObjects.</summary>
internal static class PlainJson
{
    /// <summary>A value given by a user (hashtable, array, string, number, bool, date, null) as JSON.</summary>
    public static JToken FromObject(object? value, string what)
    {
        switch (value)
        {
            case null:
                return JValue.CreateNull();
            case JToken token:
                return token.DeepClone();
            case string s:
                return new JValue(s);
            case char c:
                return new JValue(c.ToString());
            case bool b:
                return new JValue(b);
            case int or long or short or byte or sbyte or uint or ushort:
                return new JValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
            case ulong u:
                return new JValue(u);
            case float or double:
                var d = Convert.ToDouble(value, CultureInfo.InvariantCulture);
                if (double.IsNaN(d) || double.IsInfinity(d))
                {
                    throw Invalid(what, "NaN and infinity are not JSON numbers.");
                }

                return new JValue(d);
            case decimal m:
                return new JValue(m);
            case DateTime dt:
                return new JValue(dt.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));
            case DateTimeOffset dto:
                return new JValue(dto.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));
            case Guid g:
                return new JValue(g.ToString());
            case Enum e:
                return new JValue(e.ToString());
            case IDictionary dictionary:
                var obj = new JObject();
                foreach (DictionaryEntry entry in dictionary)
                {
                    var key = Convert.ToString(entry.Key, CultureInfo.InvariantCulture) ?? string.Empty;
                    obj[key] = FromObject(entry.Value, $"{what}.{key}");
                }

                return obj;
            case IEnumerable sequence:
                var array = new JArray();
                foreach (var item in sequence)
                {
                    array.Add(FromObject(item, what + "[]"));
                }

                return array;
            default:
                throw Invalid(what, $"A value of type {value.GetType().FullName} cannot be stored in a document; use a string, number, boolean, hashtable or array.");
        }
    }

    /// <summary>A document as an ordered, case-insensitive dictionary (as <c>ConvertFrom-Json
    /// -AsHashtable</c> gives it), arrays as object[].</summary>
    public static object? ToPlain(JToken? token)
    {
        switch (token)
        {
            case null:
                return null;
            case JObject obj:
                var dictionary = new OrderedDictionary(StringComparer.OrdinalIgnoreCase);
                foreach (var property in obj.Properties())
                {
                    dictionary[property.Name] = ToPlain(property.Value);
                }

                return dictionary;
            case JArray array:
                var items = new object?[array.Count];
                for (var i = 0; i < array.Count; i++)
                {
                    items[i] = ToPlain(array[i]);
                }

                return items;
            case JValue value:
                return value.Type switch
                {
                    JTokenType.Null or JTokenType.Undefined => null,
                    JTokenType.Integer when value.Value is long l && l is >= int.MinValue and <= int.MaxValue => (int)l,
                    _ => value.Value,
                };
            default:
                return token.ToString();
        }
    }

    private static MigrationException Invalid(string what, string why) =>
        new(MigrationErrorKind.InvalidArgument, "InvalidValue", $"The value of '{what}' is not valid. {why}", what);
}
