using System.Security.Cryptography;
using System.Text;

namespace CosmosMigrations.Operations;

/// <summary>A custom change: a function gets each document and returns it changed, or null to
/// leave it. The Core sees only the delegate; PowerShell script blocks are bridged by the cmdlets.
/// <see cref="Source"/> (the script text) identifies it in the checksum.</summary>
internal sealed class TransformFunction
{
    public TransformFunction(string name, string source, Func<JObject, CancellationToken, Task<JObject?>> invoke)
    {
        Name = name;
        Source = source;
        Invoke = invoke;
    }

    public string Name { get; }

    public string Source { get; }

    public Func<JObject, CancellationToken, Task<JObject?>> Invoke { get; }
}

internal sealed class TransformOperation : DocumentOperation
{
    public TransformOperation(TransformFunction function)
    {
        Function = function;
    }

    public TransformFunction Function { get; }

    public override string Kind => "Transform";

    public override string? SelectionCondition => null;

    public override bool RemovesFields => true;

    public override string Describe() => $"transform with {Function.Name}";

    public override JObject ToCanonical()
    {
        using var sha = SHA256.Create();
        var hash = sha.ComputeHash(Encoding.UTF8.GetBytes(Function.Source.Replace("\r\n", "\n")));
        return new JObject { ["op"] = Kind, ["name"] = Function.Name, ["sourceSha256"] = BitConverter.ToString(hash).Replace("-", "").ToLowerInvariant() };
    }

    public override async Task ApplyAsync(DocumentEdit edit, CancellationToken cancellationToken)
    {
        JObject? result;
        try
        {
            result = await Function.Invoke((JObject)edit.Current.DeepClone(), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception ex) when (ex is not DocumentOperationException)
        {
            throw new DocumentOperationException($"transform {Function.Name} failed: {ex.Message}", ex);
        }

        if (result is null)
        {
            return;
        }

        if (!string.Equals((string?)result["id"], edit.Id, StringComparison.Ordinal))
        {
            throw new DocumentOperationException($"transform {Function.Name} changed the document id (a migration cannot change ids)");
        }

        edit.ReplaceWith(result);
    }
}
