using System;
using Xunit;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>A test that needs the local server's harness (its hooks: splits, faults, ranges, its
/// hashing): it runs wherever the tests talk to the local server, and is skipped, saying why,
/// against another endpoint (COSMOS_ENDPOINT without COSMOSMIGRATIONS_HARNESS=1).</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class HarnessFactAttribute : FactAttribute
{
    public HarnessFactAttribute(string? why = null)
    {
        if (!CosmosTestServer.OnHarness)
        {
            Skip = why is null ? "Needs the local server's harness." : $"Needs the local server's harness: {why}.";
        }
    }
}
