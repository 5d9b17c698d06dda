# Meta-tests over every command, as dbatools does: the manifest, the exports and the help.
BeforeDiscovery {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Commands = @(Get-Command -Module CosmosMigrations -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } })
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Manifest = Test-ModuleManifest (Join-Path $script:ModulePath 'CosmosMigrations.psd1')
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
}

Describe 'The module manifest' {
    It 'is valid and names the compiled module' {
        # The root module is the loader: it imports the compiled module from bin/, in the
        # module's own load context (Isolation.Tests.ps1 covers what that is for).
        $script:Manifest.RootModule | Should -Be 'CosmosMigrations.psm1'
        $script:Manifest.Version | Should -Not -BeNullOrEmpty
        $implementation = (Get-Command Connect-CosmosMigration).ImplementingType.Assembly
        $implementation.Location | Should -Be (Join-Path $script:ModulePath 'bin/CosmosMigrations.Module.dll')
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($implementation).Name | Should -Be 'CosmosMigrations'
    }

    It 'claims PowerShell 7.4 (Core) only, what its entry assembly is built for' {
        # Windows PowerShell 5.1 is not claimed: nothing tests it, and it has no load context.
        $script:Manifest.CompatiblePSEditions | Should -Be @('Core')
        $script:Manifest.PowerShellVersion | Should -Be ([version] '7.4')
        $entry = [System.AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.Location -eq (Join-Path $script:ModulePath 'CosmosMigrations.dll') }
        $entry.GetCustomAttributes([System.Runtime.Versioning.TargetFrameworkAttribute], $false).FrameworkName | Should -Be '.NETCoreApp,Version=v8.0'
        $PSVersionTable.PSEdition | Should -Be 'Core'
        $PSVersionTable.PSVersion | Should -BeGreaterOrEqual $script:Manifest.PowerShellVersion
    }

    It 'exports exactly the cmdlets that the assembly defines, without wildcards' {
        $data = Import-PowerShellDataFile (Join-Path $script:ModulePath 'CosmosMigrations.psd1')
        $data.CmdletsToExport | Should -Not -Contain '*'
        # The cmdlet assembly as the module's load context holds it (loading the file again into
        # the default context would be a second copy of it).
        $context = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -EQ 'CosmosMigrations'
        $assembly = $context.Assemblies | Where-Object { $_.GetName().Name -eq 'CosmosMigrations.Module' }
        $assembly | Should -HaveCount 1
        $defined = $assembly.GetTypes() | ForEach-Object { $_.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false) } |
            ForEach-Object { "$($_.VerbName)-$($_.NounName)" }
        @($data.CmdletsToExport | Sort-Object) | Should -Be @($defined | Sort-Object)
        @((Get-Command -Module CosmosMigrations).Name | Sort-Object) | Should -Be @($defined | Sort-Object)
    }

    It 'loads its format views and ships no reference-only PowerShell assembly' {
        Get-FormatData -TypeName CosmosMigrations.MigrationStatus | Should -Not -BeNullOrEmpty
        Join-Path $script:ModulePath 'System.Management.Automation.dll' | Should -Not -Exist
        Get-Help about_CosmosMigrations | Should -Not -BeNullOrEmpty
    }

    It 'ships its hot assemblies precompiled (ReadyToRun) for this platform beside the IL for every other, and loads them' {
        # build.ps1 -ReadyToRun host (the default) puts images in bin/<platform>/: a run JIT-compiles a
        # third fewer methods (docs/performance.md). An image of another platform would not load at
        # all, so bin/ keeps the IL that every other platform loads.
        # The folder the module's load context looks in: the build must have named it the same.
        $platform = [CosmosMigrations.Isolation.ModuleLoadContext]::PlatformFolder
        $platform | Should -Not -BeNullOrEmpty
        function Test-ReadyToRun([string] $Path) {
            $stream = [System.IO.File]::OpenRead($Path)
            try {
                $pe = [System.Reflection.PortableExecutable.PEReader]::new($stream)
                $pe.HasMetadata | Should -BeTrue -Because "$Path keeps its metadata"
                $pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.Size -gt 0
                $pe.Dispose()
            }
            finally { $stream.Dispose() }
        }
        foreach ($name in 'CosmosMigrations.Core', 'Microsoft.Azure.Cosmos.Client', 'Microsoft.Azure.Cosmos.Direct', 'Newtonsoft.Json') {
            Test-ReadyToRun (Join-Path $script:ModulePath "bin/$platform/$name.dll") | Should -BeTrue -Because "bin/$platform/$name.dll is a ReadyToRun image"
            Test-ReadyToRun (Join-Path $script:ModulePath "bin/$name.dll") | Should -BeFalse -Because "bin/$name.dll is IL, for every platform"
        }
        # The module's context loads this platform's images (a command loads the Core).
        $null = Test-MigrationFile (Join-Path $script:Root 'examples/migrations')
        $context = [System.Runtime.Loader.AssemblyLoadContext]::All | Where-Object Name -EQ 'CosmosMigrations'
        foreach ($name in 'CosmosMigrations.Core', 'Newtonsoft.Json') {
            ($context.Assemblies | Where-Object { $_.GetName().Name -eq $name }).Location | Should -Be (Join-Path $script:ModulePath "bin/$platform/$name.dll")
        }
    }
}

Describe 'Help of <Name>' -ForEach $script:Commands {
    BeforeAll { $script:Help = Get-Help $Name -Full }

    It 'has a synopsis of its own' {
        $script:Help.Synopsis | Should -Not -BeNullOrEmpty
        $script:Help.Synopsis | Should -Not -Match "^\s*$([regex]::Escape($Name))\s*\["
    }

    It 'has a description' {
        ($script:Help.Description.Text -join '') | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code' {
        @($script:Help.Examples.Example).Count | Should -BeGreaterThan 0
        @($script:Help.Examples.Example)[0].Code | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $parameters = (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $script:Common }
        foreach ($parameter in $parameters) {
            $entry = @($script:Help.Parameters.Parameter | Where-Object Name -EQ $parameter)
            $entry.Count | Should -Be 1 -Because "-$parameter of $Name needs help"
            ($entry[0].Description.Text -join '') | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name needs a description"
        }
    }

    It 'shows every parameter at work in an example' {
        $code = @($script:Help.Examples.Example | ForEach-Object { $_.Code }) -join "`n"
        $parameters = (Get-Command $Name).Parameters.Keys | Where-Object { $_ -notin $script:Common }
        foreach ($parameter in $parameters) {
            $code | Should -Match "-$parameter\b" -Because "an example of $Name should use -$parameter"
        }
    }

    It 'has examples that parse' {
        foreach ($example in @($script:Help.Examples.Example)) {
            $errors = $null
            $null = [System.Management.Automation.Language.Parser]::ParseInput($example.Code, [ref] $null, [ref] $errors)
            $errors | Should -BeNullOrEmpty -Because "$($example.Title) of $Name is code a user may paste"
        }
    }

    It 'supports -WhatIf and -Confirm when it writes' {
        $command = Get-Command $Name
        if ($command.Verb -in 'Start', 'Invoke', 'Stop', 'Reset', 'Undo') {
            $command.Parameters.Keys | Should -Contain 'WhatIf'
            $command.Parameters.Keys | Should -Contain 'Confirm'
        }
    }
}
