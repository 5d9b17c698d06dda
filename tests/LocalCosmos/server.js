#!/usr/bin/env node
// Local Cosmos DB (NoSQL API) protocol server for CosmosMigrations tests, demo and benchmark: the
// entry point. It runs the request handlers of @vercel/cosmosdb-server 1.0.1 behind a request
// pipeline of our own, because the package's CLI closes every connection and several of its
// handlers do not answer what the .NET SDK (Microsoft.Azure.Cosmos 3.x) needs. README.md beside
// this file names each module's job and says, row by row, how faithful the server is to the
// service and which test shows it; harness.js lists the test hooks under /_harness/.
//
// Usage: node server.js [--port 8081] [--host 127.0.0.1] [--no-ssl] [--port-fallback]
//                       [--partitions 1] [--latency-ms 0] [--state-file path] [--log-file path]
//                       [--key <base64 account key>] (default: the emulator's published key; every
//                       master-key request's signature is verified with it, auth.js)
//                       [--exit-with-stdin] (stops when its standard input closes: the xunit
//                       suite's own server goes with the test run)
// On start it prints one JSON line {"endpoint": ..., "pid": ..., "partitions": ...} (and writes
// it to --state-file). --partitions N gives every new container N partition key ranges (a
// container created with provisioned throughput gets ceil(RU/s / 10,000), as the service does).

"use strict";

const fs = require("fs");
const { fromPackage } = require("./vendor");
const { EMULATOR_KEY } = require("./auth");
const { defaults } = require("./store");
const faults = require("./faults");
const { createHandler } = require("./pipeline");
const { listen } = require("./listen");
const { startSweeper } = require("./ttl");

const Account = fromPackage("@vercel/cosmosdb-server/lib/account").default;

function parseArgs(argv) {
  const args = { port: 8081, host: "127.0.0.1", ssl: true, portFallback: false, latencyMs: 0, stateFile: null, logFile: null, partitions: 1, key: EMULATOR_KEY, exitWithStdin: false };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === "--port" || a === "-p") args.port = parseInt(argv[++i], 10);
    else if (a === "--host") args.host = argv[++i];
    else if (a === "--no-ssl") args.ssl = false;
    else if (a === "--port-fallback") args.portFallback = true;
    else if (a === "--latency-ms") args.latencyMs = parseInt(argv[++i], 10);
    else if (a === "--partitions") args.partitions = parseInt(argv[++i], 10);
    else if (a === "--state-file") args.stateFile = argv[++i];
    else if (a === "--log-file") args.logFile = argv[++i];
    else if (a === "--key") args.key = argv[++i];
    else if (a === "--exit-with-stdin") args.exitWithStdin = true;
    else { console.error(`unknown argument: ${a}`); process.exit(2); }
  }
  if (!Number.isInteger(args.partitions) || args.partitions < 1 || args.partitions > 64) {
    console.error("--partitions must be a whole number from 1 to 64");
    process.exit(2);
  }
  return args;
}

// With --log-file, everything the process would print goes to the file: a server started by a
// short-lived shell must not write to that shell's pipes once it is gone (a broken pipe kills it).
function logToFile(file) {
  const log = fs.createWriteStream(file, { flags: "a" });
  const write = (chunk, encoding, callback) => log.write(chunk, encoding, callback);
  process.stdout.write = write;
  process.stderr.write = write;
}

/// Once listening: the account (its name is the endpoint's host), the handler, the TTL sweeper,
/// and the state line that build.ps1 and the xunit fixture read the endpoint from.
function serve(args, port) {
  const hostName = args.host === "127.0.0.1" ? "localhost" : args.host;
  const account = new Account(hostName, port);
  const handle = createHandler(account, args.key);
  startSweeper(account); // per-item TTL (ttl.js says why)
  faults.setLatency(args.latencyMs || 0);
  defaults.partitions = args.partitions;
  const state = { endpoint: `${args.ssl ? "https" : "http"}://${hostName}:${port}/`, pid: process.pid, port, partitions: args.partitions };
  if (args.stateFile) fs.writeFileSync(args.stateFile, JSON.stringify(state));
  console.log(JSON.stringify(state));
  return handle;
}

if (require.main === module) {
  const args = parseArgs(process.argv.slice(2));
  if (args.logFile) logToFile(args.logFile);
  // --exit-with-stdin: a server started by a test run goes with it, however it ends (even
  // killed): the run's end closes the pipe on our standard input.
  if (args.exitWithStdin) {
    process.stdin.on("end", () => process.exit(0));
    process.stdin.on("error", () => process.exit(0));
    process.stdin.resume();
  }
  listen(args, (port) => serve(args, port));
}
