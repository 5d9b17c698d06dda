// Besides the xunit projects' shared list (tests/XunitGlobalUsings.cs): the Cosmos SDK, which
// every test of the local server is written against, and its status codes.
global using System.Net;
global using Microsoft.Azure.Cosmos;
