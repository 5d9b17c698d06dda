using System.Management.Automation.Language;
using CosmosMigrations.Tracking;

namespace CosmosMigrations.PowerShell.Infrastructure;

/// <summary>Tab completion of migration names, from the tracking documents of the session's
/// connection. A slow or absent connection completes nothing rather than hanging the prompt.</summary>
public sealed class MigrationNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Complete(wordToComplete, async (connection, ct) =>
        {
            var names = new List<string>();
            await foreach (var document in TrackingStore.Of(connection).ListAsync(ct).ConfigureAwait(false))
            {
                names.Add(document.Name);
            }

            return names;
        });
}

/// <summary>Tab completion of the container names of the connected database.</summary>
public sealed class ContainerNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Complete(wordToComplete, async (connection, ct) => (await connection.ListContainersAsync(ct).ConfigureAwait(false))
            .Where(n => n != connection.TrackingContainerName));
}

internal static class Completion
{
    public static IEnumerable<CompletionResult> Complete(string word, Func<Connection.MigrationConnection, CancellationToken, Task<IEnumerable<string>>> source)
    {
        var connection = Session.Default;
        if (connection is null)
        {
            return Array.Empty<CompletionResult>();
        }

        IEnumerable<string> names;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            names = Task.Run(() => source(connection, timeout.Token)).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A completer never fails the prompt: no connection, a slow or failing account, a
            // timeout all complete nothing.
            return Array.Empty<CompletionResult>();
        }

        var prefix = (word ?? string.Empty).Trim('\'', '"');
        return names.Where(n => n.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .OrderBy(n => n, StringComparer.Ordinal)
            .Select(n => new CompletionResult(n.IndexOfAny(new[] { ' ', '\'', '$', '`', '(', ')', '{', '}' }) >= 0 ? "'" + n.Replace("'", "''") + "'" : n, n, CompletionResultType.ParameterValue, n))
            .ToList();
    }
}
