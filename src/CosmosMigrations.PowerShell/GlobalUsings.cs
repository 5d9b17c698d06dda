// The namespaces nearly every cmdlet file uses: .NET's basics and PowerShell's. Never the Cosmos
// SDK: no SDK type crosses into the cmdlet layer. The Core's folders stay as `using` lines in each
// file, because they say what a file depends on.
global using System;
global using System.Collections;
global using System.Collections.Generic;
global using System.Globalization;
global using System.Linq;
global using System.Management.Automation;
global using System.Threading;
global using System.Threading.Tasks;
