// The test hooks under /_harness/ (not part of the Cosmos protocol: a test of this repository
// uses them to see and steer what an account would not show or let it do):
//   GET  /_harness/health           -> {"ok": true, "latencyMs": …, "partitions": N}
//   GET  /_harness/faults           -> the fault settings in force (faults.js)
//   POST /_harness/faults  {...}    -> replace them (see defaultFaults in faults.js); {} clears
//   GET  /_harness/stats            -> request counts by status, method, container, range and
//                                      authorization type, faults injected (stats.js)
//   POST /_harness/split   {"database", "container", "range"?}
//                                   -> splits the range (the one holding most documents when
//                                      "range" is absent) into two: {"parent", "children": [ids]}
//   POST /_harness/expire  {"database", "container"}
//                                   -> the all-versions change log forgets what it holds, as past
//                                      the retention window: {"dropped": N} (changelog.js)
//   GET  /_harness/ranges?database=…&container=…
//                                   -> the live ranges with their documents and LSN (splits.js)
//   POST /_harness/epk     {"partitionKey": {paths, kind, version}, "keys": [[values…], …]}
//                                   -> {"epks": [...]}: effective partition keys, for cross-checks
"use strict";

const { PartitionMap, definitionOf } = require("./partitioning");
const { defaults } = require("./store");
const faults = require("./faults");
const { stats } = require("./stats");
const { describeRanges, expireChangeLog, splitRange } = require("./splits");
const { jsonBody, pathOf } = require("./wire");

/// The EPKs of keys under a definition ({} in a key stands for an absent value).
function effectiveKeys(body) {
  const map = new PartitionMap(definitionOf({ partitionKey: body.partitionKey }), 1);
  return { epks: (body.keys || []).map(values => map.epkOf(values.map(v => (v !== null && typeof v === "object" ? undefined : v)))) };
}

/// The answer to a /_harness/ request.
async function harnessRoute(account, req, res) {
  const pathname = pathOf(req);
  if (pathname === "/_harness/health") return { ok: true, latencyMs: faults.latency(), partitions: defaults.partitions };
  if (pathname === "/_harness/stats") return stats;
  if (pathname === "/_harness/faults" && req.method === "GET") return faults.view();
  if (pathname === "/_harness/faults" && req.method === "POST") return faults.configure(await jsonBody(req));
  if (pathname === "/_harness/split" && req.method === "POST") return splitRange(account, await jsonBody(req), res);
  if (pathname === "/_harness/expire" && req.method === "POST") return expireChangeLog(account, await jsonBody(req), res);
  if (pathname === "/_harness/ranges" && req.method === "GET") return describeRanges(account, req.url, res);
  if (pathname === "/_harness/epk" && req.method === "POST") return effectiveKeys(await jsonBody(req));
  res.statusCode = 404;
  return { message: "unknown harness route" };
}

module.exports = { harnessRoute };
