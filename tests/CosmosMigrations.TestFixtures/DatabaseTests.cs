using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using Microsoft.Azure.Cosmos;
using Xunit;
using Xunit.Abstractions;

namespace CosmosMigrations.Tests.Infrastructure;

/// <summary>The base of an xunit class whose tests talk to the test server: they share one fresh
/// database (dropped after the class) and write to the test's output.</summary>
public abstract class DatabaseTests : IClassFixture<TestDatabase>
{
    protected DatabaseTests(TestDatabase db, ITestOutputHelper output)
    {
        Db = db;
        Output = output;
    }

    /// <summary>This class's database, its client and the server it lives on.</summary>
    protected TestDatabase Db { get; }

    protected ITestOutputHelper Output { get; }

    /// <summary>Every page of a feed iterator (which it disposes).</summary>
    protected static Task<List<T>> DrainAsync<T>(FeedIterator<T> iterator) => TestDatabase.DrainAsync(iterator);

    /// <summary>Waits until <paramref name="condition"/> holds, polling; throws naming
    /// <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    protected static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }

            await Task.Delay(100);
        }
    }
}
