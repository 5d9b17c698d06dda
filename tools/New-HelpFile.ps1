<#
.SYNOPSIS
    Builds the module's MAML help from docs/commands/*.md: en-US/<cmdlet assembly>-Help.xml, i.e.
    en-US/CosmosMigrations.Module.dll-Help.xml (PowerShell looks for the help of a compiled cmdlet
    under the file name of the assembly that implements it, here bin/CosmosMigrations.Module.dll).

.DESCRIPTION
    One markdown page per cmdlet, with the sections '## SYNOPSIS', '## DESCRIPTION',
    '## EXAMPLES' ('### Example N: title', a code block, then remarks), '## PARAMETERS'
    ('### -Name' then its description), and optionally '## OUTPUTS' and '## RELATED LINKS'.
    Types, positions, pipeline input and parameter sets come from the compiled cmdlets. The
    build fails when a cmdlet has no page, a page has no synopsis or example, a parameter has no
    description (or is documented but does not exist), or no example's code uses a parameter.
#>
param(
    [Parameter(Mandatory)] [string] $DocsPath,
    [Parameter(Mandatory)] [string] $ModulePath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
$module = Import-Module $ModulePath -PassThru -Force

function Split-Sections([string] $text, [string] $marker) {
    $sections = [ordered]@{}
    $current = $null
    foreach ($line in $text -split "`r?`n") {
        if ($line -match "^$marker\s+(.+?)\s*$") {
            $current = $Matches[1]
            $sections[$current] = [System.Collections.Generic.List[string]]::new()
        }
        elseif ($null -ne $current) { $sections[$current].Add($line) }
    }
    return $sections
}

function ConvertTo-Paragraphs([string[]] $lines) {
    $text = ($lines -join "`n").Trim()
    if (-not $text) { return @() }
    return @($text -split "`n\s*`n" | ForEach-Object { ($_ -split "`n" | ForEach-Object { $_.Trim() }) -join ' ' } | Where-Object { $_ })
}

function Add-Element($writer, [string] $prefix, [string] $name, [string] $ns, [string] $text) {
    $writer.WriteStartElement($prefix, $name, $ns)
    if ($null -ne $text) { $writer.WriteString($text) }
    $writer.WriteEndElement()
}

function Add-Paragraphs($writer, [string[]] $paragraphs) {
    $writer.WriteStartElement('maml', 'description', $maml)
    foreach ($para in $paragraphs) { Add-Element $writer 'maml' 'para' $maml $para }
    $writer.WriteEndElement()
}

$maml = 'http://schemas.microsoft.com/maml/2004/10'
$command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$dev = 'http://schemas.microsoft.com/maml/dev/2004/10'
$problems = [System.Collections.Generic.List[string]]::new()

$outDir = Join-Path $ModulePath 'en-US'
New-Item -ItemType Directory -Path $outDir -Force | Out-Null
$settings = [System.Xml.XmlWriterSettings]::new()
$settings.Indent = $true
$settings.Encoding = [System.Text.UTF8Encoding]::new($false)
$assemblies = @($module.ExportedCmdlets.Values | ForEach-Object { Split-Path -Leaf $_.ImplementingType.Assembly.Location } | Sort-Object -Unique)
if ($assemblies.Count -ne 1) { throw "The cmdlets should come from one assembly; found: $($assemblies -join ', ')" }
$helpFile = Join-Path $outDir "$($assemblies[0])-Help.xml"
$writer = [System.Xml.XmlWriter]::Create($helpFile, $settings)
$writer.WriteStartDocument()
$writer.WriteStartElement('helpItems', 'http://msh')
$writer.WriteAttributeString('schema', 'maml')

foreach ($cmd in ($module.ExportedCmdlets.Values | Sort-Object Name)) {
    $page = Join-Path $DocsPath "$($cmd.Name).md"
    if (-not (Test-Path $page)) { $problems.Add("$($cmd.Name): no help page $page"); continue }
    $sections = Split-Sections (Get-Content $page -Raw) '##'
    $synopsis = if ($sections.Contains('SYNOPSIS')) { (ConvertTo-Paragraphs $sections['SYNOPSIS']) -join ' ' } else { '' }
    if (-not $synopsis) { $problems.Add("$($cmd.Name): no SYNOPSIS") }
    $examples = if ($sections.Contains('EXAMPLES')) { Split-Sections ($sections['EXAMPLES'] -join "`n") '###' } else { [ordered]@{} }
    if ($examples.Count -eq 0) { $problems.Add("$($cmd.Name): no example") }
    $paramDocs = if ($sections.Contains('PARAMETERS')) { Split-Sections ($sections['PARAMETERS'] -join "`n") '###' } else { [ordered]@{} }
    $parameters = @($cmd.Parameters.Values | Where-Object { $_.Name -notin $common })
    foreach ($p in $parameters) {
        if (-not $paramDocs.Contains("-$($p.Name)") -or -not (ConvertTo-Paragraphs $paramDocs["-$($p.Name)"])) {
            $problems.Add("$($cmd.Name): parameter -$($p.Name) has no description")
        }
    }
    # Every parameter is shown at work in at least one example's code.
    $exampleCode = (@($examples.Values | ForEach-Object { $_ -join "`n" }) -join "`n" | Select-String -Pattern '(?s)```\w*\n(.*?)```' -AllMatches).Matches |
        ForEach-Object { $_.Groups[1].Value }
    foreach ($p in $parameters) {
        if (-not ($exampleCode -match "-$($p.Name)\b")) { $problems.Add("$($cmd.Name): no example uses -$($p.Name)") }
    }
    foreach ($documented in $paramDocs.Keys) {
        if ($documented.TrimStart('-') -notin $cmd.Parameters.Keys) { $problems.Add("$($cmd.Name): documents $documented, which does not exist") }
    }

    $writer.WriteStartElement('command', 'command', $command)
    $writer.WriteAttributeString('xmlns', 'maml', $null, $maml)
    $writer.WriteAttributeString('xmlns', 'dev', $null, $dev)
    $writer.WriteStartElement('command', 'details', $command)
    Add-Element $writer 'command' 'name' $command $cmd.Name
    Add-Paragraphs $writer @($synopsis)
    Add-Element $writer 'command' 'verb' $command $cmd.Verb
    Add-Element $writer 'command' 'noun' $command $cmd.Noun
    $writer.WriteEndElement()

    Add-Paragraphs $writer (ConvertTo-Paragraphs $(if ($sections.Contains('DESCRIPTION')) { $sections['DESCRIPTION'] } else { @() }))

    $writer.WriteStartElement('command', 'syntax', $command)
    foreach ($set in $cmd.ParameterSets) {
        $writer.WriteStartElement('command', 'syntaxItem', $command)
        Add-Element $writer 'maml' 'name' $maml $cmd.Name
        foreach ($sp in ($set.Parameters | Where-Object { $_.Name -notin $common })) {
            $writer.WriteStartElement('command', 'parameter', $command)
            $writer.WriteAttributeString('required', $sp.IsMandatory.ToString().ToLowerInvariant())
            $writer.WriteAttributeString('position', $(if ($sp.Position -ge 0) { "$($sp.Position)" } else { 'named' }))
            Add-Element $writer 'maml' 'name' $maml $sp.Name
            if ($sp.ParameterType -ne [System.Management.Automation.SwitchParameter]) {
                Add-Element $writer 'command' 'parameterValue' $command $sp.ParameterType.Name
            }
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()

    $writer.WriteStartElement('command', 'parameters', $command)
    foreach ($p in $parameters) {
        $attributes = @($p.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] })
        $pipeline = @()
        if (@($attributes | Where-Object ValueFromPipeline).Count) { $pipeline += 'ByValue' }
        if (@($attributes | Where-Object ValueFromPipelineByPropertyName).Count) { $pipeline += 'ByPropertyName' }
        $position = @($attributes | Where-Object { $_.Position -ge 0 }) | Select-Object -First 1
        $mandatory = [bool]@($attributes | Where-Object Mandatory).Count
        $wildcards = [bool]@($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }).Count
        $writer.WriteStartElement('command', 'parameter', $command)
        $writer.WriteAttributeString('required', $mandatory.ToString().ToLowerInvariant())
        $writer.WriteAttributeString('globbing', $wildcards.ToString().ToLowerInvariant())
        $writer.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
        $writer.WriteAttributeString('position', $(if ($position) { "$($position.Position)" } else { 'named' }))
        $writer.WriteAttributeString('aliases', $(if ($p.Aliases.Count) { $p.Aliases -join ', ' } else { 'none' }))
        Add-Element $writer 'maml' 'name' $maml $p.Name
        Add-Paragraphs $writer (ConvertTo-Paragraphs $(if ($paramDocs.Contains("-$($p.Name)")) { $paramDocs["-$($p.Name)"] } else { @() }))
        Add-Element $writer 'command' 'parameterValue' $command $p.ParameterType.Name
        $writer.WriteStartElement('dev', 'type', $dev); Add-Element $writer 'maml' 'name' $maml $p.ParameterType.FullName; $writer.WriteEndElement()
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()

    if ($sections.Contains('OUTPUTS')) {
        $writer.WriteStartElement('command', 'returnValues', $command)
        foreach ($output in (Split-Sections ($sections['OUTPUTS'] -join "`n") '###').GetEnumerator()) {
            $writer.WriteStartElement('command', 'returnValue', $command)
            $writer.WriteStartElement('dev', 'type', $dev); Add-Element $writer 'maml' 'name' $maml $output.Key; $writer.WriteEndElement()
            Add-Paragraphs $writer (ConvertTo-Paragraphs $output.Value)
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()
    }

    $writer.WriteStartElement('command', 'examples', $command)
    foreach ($example in $examples.GetEnumerator()) {
        $body = $example.Value -join "`n"
        $code = if ($body -match '(?s)```(?:powershell)?\s*\n(.*?)```') { $Matches[1].TrimEnd() } else { '' }
        if (-not $code) { $problems.Add("$($cmd.Name): '$($example.Key)' has no code block") }
        $writer.WriteStartElement('command', 'example', $command)
        Add-Element $writer 'maml' 'title' $maml "-------------------------- $($example.Key) --------------------------"
        Add-Element $writer 'dev' 'code' $dev $code
        $writer.WriteStartElement('dev', 'remarks', $dev)
        foreach ($para in (ConvertTo-Paragraphs (($body -replace '(?s)```.*?```', '') -split "`n"))) { Add-Element $writer 'maml' 'para' $maml $para }
        $writer.WriteEndElement()
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()

    $writer.WriteStartElement('maml', 'relatedLinks', $maml)
    if ($sections.Contains('RELATED LINKS')) {
        foreach ($link in ($sections['RELATED LINKS'] | Where-Object { $_ -match '\S' })) {
            $writer.WriteStartElement('maml', 'navigationLink', $maml)
            Add-Element $writer 'maml' 'linkText' $maml ($link -replace '^\s*[-*]\s*', '')
            $writer.WriteEndElement()
        }
    }
    $writer.WriteEndElement()
    $writer.WriteEndElement()
}

$writer.WriteEndElement()
$writer.WriteEndDocument()
$writer.Dispose()

if ($problems.Count -gt 0) {
    $problems | ForEach-Object { Write-Host "help: $_" -ForegroundColor Red }
    throw "Help is incomplete ($($problems.Count) problem(s)): every cmdlet needs a page under docs/commands with a synopsis, examples that use every parameter, and every parameter described."
}
Write-Host "    Help: $helpFile"
