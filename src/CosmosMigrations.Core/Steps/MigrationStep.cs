namespace CosmosMigrations.Steps;

/// <summary>One step of a migration. The runner records the step it is on in the cursor.</summary>
internal abstract class MigrationStep
{
    public abstract string Describe();

    public abstract JToken ToCanonical();
}
