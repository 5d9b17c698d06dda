// The namespaces nearly every xunit test file uses: .NET's basics, Newtonsoft's JSON and xunit.
// Compiled into each xunit project (CosmosMigrations.Core.Tests, LocalCosmos.Tests) from here, so
// that they share one list. The engine's folders stay as `using` lines in each file: they say
// what a test reaches into.
global using System;
global using System.Collections.Generic;
global using System.Linq;
global using System.Threading;
global using System.Threading.Tasks;
global using Newtonsoft.Json.Linq;
global using Xunit;
global using Xunit.Abstractions;
