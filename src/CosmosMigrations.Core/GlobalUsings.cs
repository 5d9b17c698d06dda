// The namespaces nearly every file of the engine uses: .NET's basics, the Cosmos SDK and
// Newtonsoft's JSON (the SDK's own serializer). The engine's own folders stay as `using` lines in
// each file, because they say which folders a file depends on (see docs/architecture.md).
global using System;
global using System.Collections.Generic;
global using System.Globalization;
global using System.Linq;
global using System.Net;
global using System.Threading;
global using System.Threading.Tasks;
global using Microsoft.Azure.Cosmos;
global using Newtonsoft.Json;
global using Newtonsoft.Json.Linq;
