using System.Runtime.InteropServices;
using System.Security;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Lets a SecureString parameter also take a plain string (as runbooks have it from a
/// variable), converting it at once so the plain text is not kept.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class SecureStringTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        if (value is string text)
        {
            var secure = new SecureString();
            foreach (var ch in text)
            {
                secure.AppendChar(ch);
            }

            secure.MakeReadOnly();
            return secure;
        }

        return value;
    }

    internal static string? ToPlain(SecureString? secure)
    {
        if (secure is null)
        {
            return null;
        }

        var pointer = Marshal.SecureStringToGlobalAllocUnicode(secure);
        try
        {
            return Marshal.PtrToStringUni(pointer);
        }
        finally
        {
            Marshal.ZeroFreeGlobalAllocUnicode(pointer);
        }
    }
}
