using System.Diagnostics;

namespace CosmosMigrations.Tracking;

internal static class LeaseOwners
{
    /// <summary>This process, with a fresh run id.</summary>
    public static LeaseOwner Current()
    {
        using var process = Process.GetCurrentProcess();
        return new LeaseOwner
        {
            Host = Environment.MachineName,
            ProcessId = process.Id,
            User = Environment.UserName,
            RunId = Guid.NewGuid().ToString("N"),
        };
    }
}
