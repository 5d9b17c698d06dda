using CosmosMigrations.Connection;
using CosmosMigrations.Errors;

namespace CosmosMigrations.PowerShell.Infrastructure;

public abstract partial class MigrationRunCommandBase
{
    /// <summary>-WhatIf: the migration's dry run (what would change, fail, or conflict), written as
    /// a line and a <see cref="MigrationPreview"/>; nothing is written to the account.</summary>
    private void Preview(MigrationConnection connection, RunItem item)
    {
        try
        {
            var runner = NewRunner(connection);
            var options = BuildOptions(null);
            var progress = Progress(item.Name);
            var preview = RunAsync(ct => item.Preview(runner, options, progress, ct));
            progress.Complete();
            Host.UI.WriteLine($"What if: {preview.WouldChange} of {preview.Scanned} document(s) read in '{preview.Container}' would change ({item.Name}); {preview.WouldFail} would fail" +
                (preview.WouldConflict > 0 ? $"; {preview.WouldConflict} changed since the migration would be left alone (conflicts)." : "."));
            WriteObject(preview);
        }
        catch (MigrationException ex)
        {
            WriteError(ErrorRecords.From(ex));
        }
    }
}
