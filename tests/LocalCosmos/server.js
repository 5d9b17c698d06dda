#!/usr/bin/env node
// Local Cosmos DB (NoSQL API) protocol server for CosmosMigrations tests, demo and benchmark.
//
// It runs the request handlers of @vercel/cosmosdb-server 1.0.1 behind a request pipeline of our
// own, because the package's CLI closes every connection and several of its handlers do not
// answer what the .NET SDK (Microsoft.Azure.Cosmos 3.x) needs. Each override below says why it
// exists; README.md beside this file says, row by row, how faithful the server is to the service
// and which test shows it. Two modules hold the larger parts:
//   partitioning.js  effective partition keys (the SDKs' own hashing), ranges, LSNs, splits
//   queries.js       the SQL engine's fixes, DISTINCT / OFFSET / aggregates, query plans
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
//
// Test hooks (not part of the Cosmos protocol), under /_harness/:
//   GET  /_harness/health           -> {"ok": true, "partitions": N}
//   GET  /_harness/faults           -> the fault settings in force
//   POST /_harness/faults  {...}    -> replace them (see defaultFaults); {} clears
//   GET  /_harness/stats            -> request counts by status, method, container, range and
//                                      authorization type (auth.js), faults injected
//   POST /_harness/split   {"database", "container", "range"?}
//                                   -> splits the range (the one holding most documents when
//                                      "range" is absent) into two: {"parent", "children": [ids]}
//   GET  /_harness/ranges?database=…&container=…
//                                   -> the live ranges with their documents and LSN
//   POST /_harness/epk     {"partitionKey": {paths, kind, version}, "keys": [[values…], …]}
//                                   -> {"epks": [...]}: effective partition keys, for cross-checks

"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");
const crypto = require("crypto");
const { BadQuery, QuerySyntaxError, executeQuery, matchesCondition, queryPlan } = require("./queries");
const { authorize } = require("./auth");
const { ENABLE_MESSAGE, fullFidelityEnabled, keyObject, logOf, wireItem } = require("./changelog");
const {
  MAX_EPK, PartitionMap, canonicalKey, definitionOf, keyValues, matchesKey, requestKeyValues, sameDefinition
} = require("./partitioning");

const packageDir = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json"));
const fromPackage = (m) => require(require.resolve(m, { paths: [packageDir] }));

const Account = fromPackage("@vercel/cosmosdb-server/lib/account").default;
const packageRoutes = fromPackage("@vercel/cosmosdb-server/lib/routes").default;
const routerFactory = fromPackage("@vercel/cosmosdb-server/lib/router").default;
const Documents = fromPackage("@vercel/cosmosdb-server/lib/account/documents").default;
const Items = fromPackage("@vercel/cosmosdb-server/lib/account/items").default;
const { patchOperation } = fromPackage("@vercel/cosmosdb-server/lib/handler/_patch-operations");
const documentOperations = fromPackage("@vercel/cosmosdb-server/lib/handler/_document-operations");
const createCollection = fromPackage("@vercel/cosmosdb-server/lib/handler/create-collection").default;
const readBody = fromPackage("raw-body");

let defaultPartitions = 1;

// ---------------------------------------------------------------------------------------------
// Fix 10 — document identity. The package keys a document by its id and the value of the
// first partition key path only, and falls back to the id when that value is falsy: documents of
// a hierarchical key (MultiHash) that differ only in their 2nd or 3rd value overwrote each other,
// and so did keys 0, "", false and null. A document's partition is now all its key values
// (`canonicalKey`), and the handlers below pass the request's key in the same form.
// ---------------------------------------------------------------------------------------------
function definitionOfItems(items) {
  if (!items._definition) items._definition = definitionOf(items._parent.read());
  return items._definition;
}

Documents.prototype._getPartition = function partitionOf(data) {
  return canonicalKey(keyValues(definitionOfItems(this), data));
};

/// The ranges of a container (created with the container, or on first use with the default).
function partitionsOf(items) {
  if (!items._partitions) items._partitions = new PartitionMap(definitionOfItems(items), defaultPartitions);
  return items._partitions;
}

// ---------------------------------------------------------------------------------------------
// Fix 2 — change feed and ranges. The package answers one page, then 304 forever. Every write now
// finds the document's range by its effective partition key (EPK) and stamps the range's next
// sequence number (the LSN of the real service), kept beside the item rather than in it so that
// stored documents stay exactly as written. The change feed of a range returns each changed
// document once, at its latest version, in LSN order; its ETag is the last LSN returned.
// ---------------------------------------------------------------------------------------------
const originalSet = Items.prototype._set;
Documents.prototype._set = function setWithLsn(data) {
  const stored = originalSet.call(this, data);
  const map = partitionsOf(this);
  const epk = map.epkOf(keyValues(map.definition, stored));
  const range = map.rangeOf(epk);
  range.lsn += 1;
  if (!this._meta) this._meta = new Map();
  // A replace keeps the document's _rid (the package replaces by a delete and a set), so a known
  // _rid is a replace, whose previous version's LSN the all-versions feed reports.
  const previous = this._meta.get(stored._rid);
  // Deleted first so that the map's order is write order: within a range, that is LSN order,
  // which lets a change feed read walk it instead of sorting the range on every read.
  this._meta.delete(stored._rid);
  this._meta.set(stored._rid, { epk, lsn: range.lsn });
  const log = logOf(this, this._parent.read());
  if (log) log.append({ lsn: range.lsn, epk, crts: Date.now() / 1000, operationType: previous ? "replace" : "create", previousLsn: previous ? previous.lsn : 0, document: stored });
  return stored;
};
const originalDelete = Items.prototype.delete;
Documents.prototype.delete = function deleteWithLsn(idOrRid, partition) {
  const existing = this._item("/id", idOrRid, partition).read();
  originalDelete.call(this, idOrRid, partition);
  if (this._replacing) return;
  if (existing && this._meta) {
    // A delete takes the range's next LSN, as on the service (only the all-versions feed shows it).
    const known = this._meta.get(existing._rid);
    const map = partitionsOf(this);
    const values = keyValues(map.definition, existing);
    const epk = known ? known.epk : map.epkOf(values);
    const range = map.rangeOf(epk);
    range.lsn += 1;
    this._meta.delete(existing._rid);
    const log = logOf(this, this._parent.read());
    if (log) log.append({ lsn: range.lsn, epk, crts: Date.now() / 1000, operationType: "delete", previousLsn: known ? known.lsn : 0, document: existing, key: keyObject(map.definition, values), timeToLiveExpired: !!this._expiring });
  }
  forgetOrder(this);
};
// ---------------------------------------------------------------------------------------------
// Fix 1b — query cost, continued. Every query sorts its input by `_rid` with a generic
// comparator; the package hands it documents in Map order (a replace moves a document to the
// end), so each page paid a full O(N log N) sort (~80 ms at 20,000 documents). A document's
// `_rid` never changes, so the rid order (of the container, and of each range) is cached until a
// document is created or deleted or a range splits (a replace is a delete + set inside the
// package: not a membership change), and the engine's sort of a sorted input is a linear pass.
// ---------------------------------------------------------------------------------------------
const originalCreate = Items.prototype.create;
Documents.prototype.create = function createAndForgetOrder(data) {
  const stored = originalCreate.call(this, data);
  forgetOrder(this);
  return stored;
};
const originalReplace = Items.prototype.replace;
Documents.prototype.replace = function replaceKeepingOrder(data, original) {
  this._replacing = true;
  try { return originalReplace.call(this, data, original); } finally { this._replacing = false; }
};

function forgetOrder(items) {
  items._ridOrder = null;
  items._windowOrder = null;
}

function ridOrder(items) {
  if (!items._ridOrder) items._ridOrder = [...items._data.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return items._ridOrder;
}

/// The sorted `_rid`s of the documents whose EPK lies in [min, max).
function windowOrder(items, min, max) {
  const all = ridOrder(items);
  if (min === "" && max === MAX_EPK) return all;
  if (!items._windowOrder) items._windowOrder = new Map();
  const key = `${min}|${max}`;
  let rids = items._windowOrder.get(key);
  if (!rids) {
    const meta = items._meta || new Map();
    rids = all.filter(rid => { const m = meta.get(rid); return m && m.epk >= min && m.epk < max; });
    if (items._windowOrder.size > 64) items._windowOrder.clear();
    items._windowOrder.set(key, rids);
  }
  return rids;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
const isTrue = (req, name) => String(req.headers[name] || "").toLowerCase() === "true";
const header = (req, name) => { const v = req.headers[name]; return Array.isArray(v) ? v[0] : v; };

async function jsonBody(req) {
  const raw = await readBody(req);
  return raw.length ? JSON.parse(raw.toString()) : {};
}

// LOCALCOSMOS_TRACE=1 logs every query and plan request with its addressing headers.
function trace(kind, req, body) {
  if (!process.env.LOCALCOSMOS_TRACE) return;
  const h = (n) => header(req, n);
  console.log(JSON.stringify({ kind, query: body.query, parameters: body.parameters, error: body.error, range: h("x-ms-documentdb-partitionkeyrangeid"), key: h("x-ms-documentdb-partitionkey"), epk: [h("x-ms-start-epk"), h("x-ms-end-epk")], continuation: h("x-ms-continuation") }));
}

function notFound(res) {
  res.statusCode = 404;
  return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
}

function badRequest(res, message) {
  res.statusCode = 400;
  return { code: "BadRequest", message };
}

// Fix 11 — addressing by range. The SDK addresses a query, a read feed or a change feed to a
// physical range (`x-ms-documentdb-partitionkeyrangeid`), to part of one (`x-ms-start-epk` /
// `x-ms-end-epk` with `x-ms-read-key-type: EffectivePartitionKeyRange`), or to a partition key
// (`x-ms-documentdb-partitionkey`, a prefix of a hierarchical key too). The package ignored all
// three. A request's scope is the documents they select; a range that split is gone: 410 with
// substatus 1002, after which the SDK re-reads /pkranges and retries on the children.
function requestScope(collection, req) {
  const items = collection.documents;
  const map = partitionsOf(items);
  let min = "";
  let max = MAX_EPK;
  let range = null;
  const rangeHeader = header(req, "x-ms-documentdb-partitionkeyrangeid");
  if (rangeHeader) {
    const id = String(rangeHeader).split(",").pop().trim();
    range = map.rangeById(id);
    if (!range) return { gone: id };
    min = range.minInclusive;
    max = range.maxExclusive;
  }
  const start = header(req, "x-ms-start-epk");
  const end = header(req, "x-ms-end-epk");
  if (start !== undefined && start > min) min = start;
  if (end !== undefined && end !== "" && end < max) max = end;
  const key = requestKeyValues(req);
  // The range whose LSN a change feed reports: the addressed one, else the key's.
  if (!range) range = key !== undefined ? map.rangeOf(map.epkOf(key)) : map.rangeOf(min);
  const rids = windowOrder(items, min, max);
  const definition = map.definition;
  const documents = (from = 0, to = Infinity) => {
    const docs = (from === 0 && to === Infinity ? rids : rids.slice(from, to)).map(rid => items._data.get(rid).read());
    return key === undefined ? docs : docs.filter(doc => matchesKey(keyValues(definition, doc), key));
  };
  return { map, range, min, max, key, rids, documents };
}

function gone(res, id) {
  res.statusCode = 410;
  res.setHeader("x-ms-substatus", "1002");
  return { code: "Gone", message: `Partition key range ${id} is gone (it split); read /pkranges again.` };
}

function parseContinuation(req) {
  const value = header(req, "x-ms-continuation");
  if (!value) return null;
  try { return JSON.parse(value); } catch (e) { return null; }
}

function pageHeaders(res, result) {
  if (result.continuation) res.setHeader("x-ms-continuation", JSON.stringify(result.continuation));
  res.setHeader("x-ms-item-count", String(result.result.length));
  return { Documents: result.result, _count: result.result.length };
}

function collectionOf(account, { dbId, collId }) {
  const collection = account.database(dbId).collection(collId);
  return collection.read() ? collection : null;
}

// ---------------------------------------------------------------------------------------------
// Overriding handlers
// ---------------------------------------------------------------------------------------------

// Fix 3 — query plan. Before a cross-partition query the SDK asks the gateway for a plan; the
// package has no handler for it and runs it as a query. The plan (queries.js) tells the SDK how
// to merge what each range answers; a query the service would reject is a 400 here already.
async function queryPlanRequest(account, req, res, params) {
  const body = await jsonBody(req);
  trace("plan", req, body);
  if (!collectionOf(account, params)) return notFound(res);
  try {
    return queryPlan(body.query || "", body.parameters);
  } catch (err) {
    if (err instanceof BadQuery) return badRequest(res, err.message);
    throw err;
  }
}

// Fix 4 — scoped queries and feeds. The package ignores the partition key header on queries (and
// rejects a query that does not name the key in its WHERE clause); here the request's scope
// (a range, part of one, or a partition key) restricts the documents the query runs over.
async function queryDocuments(account, req, res, params) {
  const body = await jsonBody(req);
  trace("query", req, body);
  if (!body.query) return badRequest(res, "missing query");
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const scope = requestScope(collection, req);
  if (scope.gone) return gone(res, scope.gone);
  const collectionData = collection.read();
  const maxItemCount = parseInt(header(req, "x-ms-max-item-count") || "0", 10) || null;
  try {
    const result = executeQuery(scope, body.query, {
      parameters: body.parameters,
      udf: collection.userDefinedFunctions.functions,
      maxItemCount,
      continuation: parseContinuation(req),
      compositeIndexes: ((collectionData.indexingPolicy || {}).compositeIndexes) || []
    });
    return pageHeaders(res, result);
  } catch (err) {
    if (err instanceof QuerySyntaxError || err.badRequest || /Invalid|not supported|only valid/i.test(err.message)) {
      trace("rejected", req, { query: body.query, parameters: body.parameters, error: err.message });
      return badRequest(res, err.message);
    }
    throw err;
  }
}

// GET /docs: the change feed when `A-IM: Incremental feed` is sent, else a (scoped) read feed.
function readDocuments(account, req, res, params) {
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const scope = requestScope(collection, req);
  if (scope.gone) return gone(res, scope.gone);
  const maxItemCount = parseInt(header(req, "x-ms-max-item-count") || "0", 10) || null;
  const feedMode = String(header(req, "a-im") || "").toLowerCase();
  if (feedMode === "incremental feed") return changeFeed(collection, scope, req, res, maxItemCount);
  if (feedMode === "full-fidelity feed") return allVersionsFeed(collection, scope, req, res, maxItemCount);
  return pageHeaders(res, executeQuery(scope, "SELECT * FROM c", { maxItemCount, continuation: parseContinuation(req) }));
}

// The change feed of a scope. Each range has its own LSN; its continuation (the ETag) is an
// LSN, which the children of a split range accept as they inherit the parent's sequence. The
// session token `<range>:-1#<lsn>` is what the change feed estimator reads the lag from.
function changeFeed(collection, scope, req, res, maxItemCount) {
  const meta = collection.documents._meta || new Map();
  const current = scope.range.lsn;
  res.setHeader("x-ms-session-token", `${scope.range.id}:-1#${current}`);
  const ifNoneMatch = String(header(req, "if-none-match") || "").replace(/"/g, "");
  let from = 0;
  if (ifNoneMatch === "*") from = current;               // start from now
  else if (ifNoneMatch) from = parseInt(ifNoneMatch, 10) || 0;
  const since = header(req, "if-modified-since");
  const ts = since && !ifNoneMatch ? Math.floor(new Date(since).getTime() / 1000) : null;
  const limit = maxItemCount && maxItemCount > 0 ? maxItemCount : Infinity;
  let docs;
  if (scope.min >= scope.range.minInclusive && scope.max <= scope.range.maxExclusive) {
    // One range (the SDK's feeds are per range or part of one): the metadata is in write order,
    // so its entries of this range come in LSN order. Walking it and stopping at a page costs
    // what it reads, where mapping, filtering and sorting the whole range on every read cost
    // a third of the server's time in a change-feed migration of 20,000 documents.
    docs = [];
    const items = collection.documents._data;
    for (const [rid, m] of meta) {
      if (m.lsn <= from || m.epk < scope.min || m.epk >= scope.max) continue;
      const item = items.get(rid);
      if (!item) continue;
      const d = item.read();
      if (scope.key !== undefined && !matchesKey(keyValues(scope.map.definition, d), scope.key)) continue;
      if (ts !== null && d._ts < ts) continue;
      docs.push([m.lsn, d]);
      if (docs.length >= limit) break;
    }
  }
  else {
    // Several ranges (not asked by the SDK): their LSNs are compared as they are.
    docs = scope.documents().map(d => [(meta.get(d._rid) || {}).lsn || 0, d]).filter(([lsn]) => lsn > from);
    if (ts !== null) docs = docs.filter(([, d]) => d._ts >= ts);
    docs.sort((a, b) => a[0] - b[0]);
    if (limit !== Infinity) docs = docs.slice(0, limit);
  }
  if (docs.length === 0) {
    res.statusCode = 304;
    // Read from a start time (If-Modified-Since) with nothing since, the continuation is the
    // range's current LSN, as the service answers: 0 made the next read (If-None-Match "0", which
    // drops the start time) deliver the whole range (a move's reverse sync rewrote every document).
    res.setHeader("etag", `"${ts !== null ? current : Math.max(from, 0)}"`);
    res.setHeader("x-ms-item-count", "0"); // the SDK parses it on a 304 too
    return null;
  }
  res.setHeader("etag", `"${docs[docs.length - 1][0]}"`);
  res.setHeader("x-ms-item-count", String(docs.length));
  return { Documents: docs.map(([lsn, d]) => ({ ...d, _lsn: lsn })), _count: docs.length };
}

// Fix 15 — the all-versions-and-deletes feed (changelog.js says what it holds and why): every
// create, replace and delete of a scope since a continuation, in LSN order, on the same per-range
// LSNs and continuations as the latest-version feed. Refused (400, the service's message) when the
// container has not turned it on; from a start time or the beginning, as the service refuses them.
function allVersionsFeed(collection, scope, req, res, maxItemCount) {
  const data = collection.read();
  if (!fullFidelityEnabled(data)) return badRequest(res, ENABLE_MESSAGE);
  const current = scope.range.lsn;
  res.setHeader("x-ms-session-token", `${scope.range.id}:-1#${current}`);
  const ifNoneMatch = String(header(req, "if-none-match") || "").replace(/"/g, "");
  const from = ifNoneMatch === "*" ? current : parseInt(ifNoneMatch, 10);
  if (!Number.isInteger(from)) {
    return badRequest(res, "The 'All Versions and Deletes' change feed starts from now or from a continuation; a start time or the beginning is not supported.");
  }
  const log = collection.documents._changeLog;
  const limit = maxItemCount && maxItemCount > 0 ? maxItemCount : Infinity;
  const definition = scope.map.definition;
  const ofKey = scope.key === undefined ? null : (entry) => matchesKey(keyValues(definition, entry.document), scope.key);
  const entries = log ? log.read(scope.min, scope.max, from, limit, ofKey) : [];
  if (entries.length === 0) {
    res.statusCode = 304;
    res.setHeader("etag", `"${from}"`);
    res.setHeader("x-ms-item-count", "0");
    return null;
  }
  res.setHeader("etag", `"${entries[entries.length - 1].lsn}"`);
  res.setHeader("x-ms-item-count", String(entries.length));
  return { _rid: data._rid, Documents: entries.map(wireItem), _count: entries.length };
}

/// The request's partition key in the store's form (Fix 10). A point operation without the
/// header addresses the id as key on an /id-keyed container, as the package did.
function partitionOfRequest(collection, req, docId) {
  const key = requestKeyValues(req);
  if (key !== undefined) return canonicalKey(key);
  const raw = header(req, "x-ms-documentdb-partitionkey");
  if (raw && /^\s*\[\s*\{\s*\}\s*\]\s*$/.test(raw)) return canonicalKey([undefined]);
  const definition = definitionOfItems(collection.documents);
  return canonicalKey(definition.paths.length === 1 && definition.paths[0] === "/id" ? [docId] : [undefined]);
}

// Fix 5 — a missing or deleted item answered 500 (a TypeError in the package); it is a 404.
function readDocument(account, req, res, params) {
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const doc = collection.document(params.docId, partitionOfRequest(collection, req, params.docId)).read();
  return doc || notFound(res);
}

/// The service refuses a write whose document carries another partition key than the header.
function keyMismatch(collection, req, body, res) {
  if (!body || typeof body !== "object" || !header(req, "x-ms-documentdb-partitionkey")) return null;
  const own = collection.documents._getPartition(body);
  if (own === partitionOfRequest(collection, req, body.id)) return null;
  return badRequest(res, "PartitionKey extracted from document doesn't match the one specified in the header.");
}

// Create, upsert, replace and delete: the package's operations, with the request's key in the
// store's form (Fix 10) and the header checked against the document.
async function writeDocument(account, req, res, params, operation) {
  const body = operation === "delete" ? null : await jsonBody(req);
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const mismatch = keyMismatch(collection, req, body, res);
  if (mismatch) return mismatch;
  const id = params.docId || (body && body.id);
  const input = { partitionKey: JSON.stringify(partitionOfRequest(collection, req, id)), ifMatch: header(req, "if-match"), resourceBody: body, id };
  let result;
  switch (operation) {
    case "create": result = documentOperations.createOperation(collection, input); break;
    case "upsert": result = documentOperations.upsertOperation(collection, input); break;
    case "delete": result = documentOperations.deleteOperation(collection, input); break;
    default:
      if (!collection.document(params.docId, JSON.parse(input.partitionKey)).read()) return notFound(res);
      result = documentOperations.replaceOperation(collection, input);
  }
  res.statusCode = result.statusCode;
  if (result.statusCode === 404) return notFound(res);
  return result.body;
}

// Fix 6 — conditional patch. The package lower-cases the whole condition (so `c.avatarUrl`
// becomes `c.avatarurl`, always undefined) and runs it as a query over the whole container.
// Here the condition is judged, case preserved, against the one document being patched.
async function patchDocument(account, req, res, params) {
  const body = await jsonBody(req);
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const operations = Array.isArray(body) ? body : body.operations;
  if (!Array.isArray(operations)) return badRequest(res, "Invalid patch request: check syntax of patch specification.");
  const partition = partitionOfRequest(collection, req, params.docId);
  const doc = collection.document(params.docId, partition).read();
  if (!doc) return notFound(res);
  const condition = Array.isArray(body) ? undefined : body.condition;
  if (condition) {
    let matched;
    try {
      matched = matchesCondition(condition, doc);
    } catch (err) {
      return badRequest(res, `Invalid condition in patch request: ${err.message}`);
    }
    if (!matched) {
      res.statusCode = 412;
      return { code: "PreconditionFailed", message: "Condition specified in the patch request is not satisfied." };
    }
  }
  const orphan = pathWithoutParent(doc, operations);
  if (orphan) return badRequest(res, `Add Operation can only create a child object of an existing node (array or object) and can't create path recursively: ${orphan}`);
  const result = patchOperation(collection, { id: params.docId, partitionKey: JSON.stringify(partition), ifMatch: header(req, "if-match"), operations });
  res.statusCode = result.statusCode;
  return result.body;
}

// Fix 6b — patch paths. When the parent of a Set/Add/Increment target does not exist, the
// package writes the target one level up (`/pending/a` lands in `/a`); the service answers 400.
// The operations are followed in order on a copy (an earlier one may create a later one's parent).
function pathWithoutParent(doc, operations) {
  const state = JSON.parse(JSON.stringify(doc));
  for (const op of operations) {
    if (typeof op.path !== "string") continue;
    const segments = op.path.split("/").slice(1).map(s => s.replace(/~1/g, "/").replace(/~0/g, "~"));
    const key = segments[segments.length - 1];
    const parent = segments.slice(0, -1).reduce((node, s) => (node !== null && typeof node === "object" ? node[s] : undefined), state);
    const isContainer = parent !== null && typeof parent === "object";
    if (["add", "set", "incr", "replace"].includes(op.op) && !isContainer) return op.path;
    if (!isContainer || Array.isArray(parent)) continue;
    if (op.op === "add" || op.op === "set" || op.op === "replace") parent[key] = JSON.parse(JSON.stringify(op.value === undefined ? null : op.value));
    else if (op.op === "incr") parent[key] = (typeof parent[key] === "number" ? parent[key] : 0) + op.value;
    else if (op.op === "remove") delete parent[key];
  }
  return null;
}

// Fix 12 — partition count. A new container gets the server's --partitions ranges, or, when it
// is created with provisioned throughput, ceil(RU/s / 10,000) of them, as the service lays it out.
async function createContainer(account, req, res, params) {
  const created = await createCollection(account, req, res, params);
  if (res.statusCode !== 201) return created;
  const manual = parseInt(header(req, "x-ms-offer-throughput") || "0", 10);
  let autoscale = 0;
  try { autoscale = (JSON.parse(header(req, "x-ms-cosmos-offer-autopilot-settings") || "{}").maxThroughput) || 0; } catch (e) { autoscale = 0; }
  const throughput = Math.max(manual, autoscale);
  const items = account.database(params.dbId).collection(created.id).documents;
  items._partitions = new PartitionMap(definitionOfItems(items), throughput > 0 ? Math.ceil(throughput / 10000) : defaultPartitions);
  return created;
}

// Fix 7 — replacing a container (to change its indexing policy) built a fresh, empty one and lost
// every document. The new definition now takes over the existing documents, functions and ranges.
// Fix 13 — it also refused any partition key definition that was not the same JSON text: the
// definition is now judged by meaning (property order, a default kind or version left out).
async function replaceCollection(account, req, res, { dbId, collId }) {
  const body = await jsonBody(req);
  const database = account.database(dbId);
  const existing = database.collection(collId);
  const data = existing.read();
  if (!data) return notFound(res);
  if (!body.id || body.id !== data.id) return badRequest(res, "replacing id is not allowed");
  if (body.partitionKey && !sameDefinition(body.partitionKey, data.partitionKey)) return badRequest(res, "replacing partitionKey is not allowed");
  if (header(req, "if-match") && header(req, "if-match") !== data._etag) {
    res.statusCode = 412;
    return { code: "PreconditionFailed", message: "Operation cannot be performed because one of the specified precondition is not met." };
  }
  const documents = existing.documents;
  const functions = existing.userDefinedFunctions;
  const replaced = database.collections.replace({ ...body, partitionKey: data.partitionKey }, data);
  const current = database.collection(collId);
  current.documents = documents;
  current.userDefinedFunctions = functions;
  documents._parent = current;
  functions._parent = current;
  faults.indexProgressFor.set(`${dbId}/${collId}`, (faults.indexProgress || []).slice());
  return replaced;
}

// Index transformation progress: the package always says -1. An in-memory server indexes at
// once, so it says 100, unless a test scripted a sequence of values through /_harness/faults.
function readCollection(account, req, res, { dbId, collId }) {
  const data = account.database(dbId).collection(collId).read();
  if (!data) return notFound(res);
  const queue = faults.indexProgressFor.get(`${dbId}/${collId}`);
  const progress = queue && queue.length ? queue.shift() : 100;
  res.setHeader("x-ms-documentdb-collection-index-transformation-progress", String(progress));
  return data;
}

// Partition key ranges. The SDK reads them as an incremental feed (`A-IM`) and polls until it
// gets a 304 for the ETag it holds. The ETag counts the ranges ever created, so after a split
// the SDK's next read (If-None-Match: the old count) returns the children, whose `parents` tell
// it which range is gone. (The package answered `"id": 0`, a number, and 304 to everything.)
function readPartitionKeyRanges(account, req, res, params) {
  const collection = collectionOf(account, params);
  if (!collection) return notFound(res);
  const map = partitionsOf(collection.documents);
  res.setHeader("etag", String(map.version));
  const since = parseInt(String(header(req, "if-none-match") || "").replace(/"/g, ""), 10);
  let ranges = map.live;
  if (header(req, "a-im") && Number.isInteger(since)) {
    if (since >= map.version) {
      res.statusCode = 304;
      return null;
    }
    ranges = map.history.slice(since);
  }
  const data = collection.read();
  const described = ranges.map(r => PartitionMap.describe(r, data));
  res.setHeader("x-ms-item-count", String(described.length));
  return { _rid: data._rid, PartitionKeyRanges: described, _count: described.length };
}

const overrides = routerFactory({
  GET: {
    "/dbs/:dbId/colls/:collId/pkranges": readPartitionKeyRanges,
    "/dbs/:dbId/colls/:collId/docs/:docId": readDocument,
    "/dbs/:dbId/colls/:collId/docs": readDocuments,
    "/dbs/:dbId/colls/:collId": readCollection
  },
  PATCH: { "/dbs/:dbId/colls/:collId/docs/:docId": patchDocument },
  POST: {
    "/dbs/:dbId/colls/:collId/docs": (a, rq, rs, p) => writeDocument(a, rq, rs, p, "create"),
    "/dbs/:dbId/colls": createContainer
  },
  POST_UPSERT: { "/dbs/:dbId/colls/:collId/docs": (a, rq, rs, p) => writeDocument(a, rq, rs, p, "upsert") },
  POST_QUERY: { "/dbs/:dbId/colls/:collId/docs": queryDocuments },
  PUT: {
    "/dbs/:dbId/colls/:collId/docs/:docId": (a, rq, rs, p) => writeDocument(a, rq, rs, p, "replace"),
    "/dbs/:dbId/colls/:collId": replaceCollection
  },
  DELETE: { "/dbs/:dbId/colls/:collId/docs/:docId": (a, rq, rs, p) => writeDocument(a, rq, rs, p, "delete") }
});

// ---------------------------------------------------------------------------------------------
// Splits (POST /_harness/split): the service splits a range when it grows; tests split on demand.
// ---------------------------------------------------------------------------------------------
function findCollection(account, database, container) {
  if (!database || !container) return null;
  return collectionOf(account, { dbId: database, collId: container });
}

function documentsPerRange(collection) {
  const map = partitionsOf(collection.documents);
  const meta = collection.documents._meta || new Map();
  const counts = new Map(map.live.map(r => [r.id, []]));
  for (const rid of collection.documents._data.keys()) {
    const m = meta.get(rid);
    if (m) counts.get(map.rangeOf(m.epk).id).push(m.epk);
  }
  return counts;
}

function splitRange(account, body, res) {
  const collection = findCollection(account, body.database, body.container);
  if (!collection) return notFound(res);
  const map = partitionsOf(collection.documents);
  const epks = documentsPerRange(collection);
  let range;
  if (body.range !== undefined && body.range !== null && body.range !== "") {
    range = map.rangeById(String(body.range));
    if (!range) return badRequest(res, `range ${body.range} is not a live range of ${body.container}`);
  } else {
    range = map.live.reduce((best, r) => (epks.get(r.id).length > epks.get(best.id).length ? r : best), map.live[0]);
  }
  const children = map.split(range, map.splitPoint(range, epks.get(range.id)));
  forgetOrder(collection.documents);
  return { parent: range.id, children: children.map(c => c.id) };
}

function describeRanges(account, url, res) {
  const query = new URL(url, "http://localhost").searchParams;
  const collection = findCollection(account, query.get("database"), query.get("container"));
  if (!collection) return notFound(res);
  const epks = documentsPerRange(collection);
  return {
    ranges: partitionsOf(collection.documents).live.map(r => ({
      id: r.id, minInclusive: r.minInclusive, maxExclusive: r.maxExclusive, parents: r.parents, lsn: r.lsn, documents: epks.get(r.id).length
    }))
  };
}

function effectiveKeys(body) {
  const map = new PartitionMap(definitionOf({ partitionKey: body.partitionKey }), 1);
  return { epks: (body.keys || []).map(values => map.epkOf(values.map(v => (v !== null && typeof v === "object" ? undefined : v)))) };
}

// ---------------------------------------------------------------------------------------------
// Fault injection and simulated network distance, for reliability tests and the benchmark.
// ---------------------------------------------------------------------------------------------
function defaultFaults() {
  return {
    rate429: 0,          // share of matching requests answered 429 with x-ms-retry-after-ms
    retryAfterMs: 5,
    rate503: 0,          // share answered 503 ServiceUnavailable
    rate408: 0,          // share answered 408 RequestTimeout
    rateDrop: 0,         // share whose connection is dropped without an answer
    rateDelay: 0,        // share delayed by delayMs before being handled
    delayMs: 0,
    pathPattern: "/docs", // only requests whose path matches are faulted
    methods: null,        // e.g. ["PATCH", "PUT"]; null = every method
    ranges: null,         // e.g. ["1"]: only requests addressed to these partition key ranges
                          // (by range id, or by a partition key that lies in one); null = all
    requestCharge: null, // number: x-ms-request-charge of every answer (default 1)
    indexProgress: [],   // values the next reads of a replaced container report, then 100
    aadDenied: null,     // Entra ID principals (token "oid"s, or "*") with no data-plane role:
                         // every request of theirs is 403 / substatus 5301 (auth.js)
    seed: 1,
    indexProgressFor: new Map()
  };
}
let faults = defaultFaults();
let latencyMs = 0;
const newStats = () => ({ requests: 0, byStatus: {}, byMethod: {}, byContainer: {}, byRange: {}, byAuth: {}, byContainerAuth: {}, injected: { 429: 0, 503: 0, 408: 0, drop: 0, delay: 0 } });
const stats = newStats();

// A small seeded generator (mulberry32), so a failing fault run can be replayed.
let rngState = 1;
function random() {
  rngState = (rngState + 0x6d2b79f5) | 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/// The ranges a /docs request is addressed to: the range id it names, or the range(s) of its
/// partition key (a prefix of a hierarchical key may span several); none for cross-partition.
function targetRanges(collection, req) {
  const map = partitionsOf(collection.documents);
  const rangeHeader = header(req, "x-ms-documentdb-partitionkeyrangeid");
  if (rangeHeader) return [String(rangeHeader).split(",").pop().trim()];
  const key = requestKeyValues(req);
  if (key === undefined) return [];
  const epk = map.epkOf(key);
  if (map.definition.kind !== "MultiHash" || key.length >= map.definition.paths.length) return [map.rangeOf(epk).id];
  const end = `${epk}FF`;
  return map.live.filter(r => r.maxExclusive > epk && r.minInclusive < end).map(r => r.id);
}

function pickFault(req) {
  const pathname = (req.url || "").split("?")[0];
  if (!new RegExp(faults.pathPattern).test(pathname)) return null;
  if (faults.methods && !faults.methods.includes(req.method)) return null;
  if (Array.isArray(faults.ranges) && !(req.rangeIds || []).some(id => faults.ranges.map(String).includes(id))) return null;
  const r = random();
  let edge = 0;
  for (const [kind, rate] of [["429", faults.rate429], ["503", faults.rate503], ["408", faults.rate408], ["drop", faults.rateDrop]]) {
    edge += rate || 0;
    if (r < edge) return kind;
  }
  return null;
}

async function harnessRoute(account, req, res) {
  const pathname = (req.url || "").split("?")[0];
  if (pathname === "/_harness/health") return { ok: true, latencyMs, partitions: defaultPartitions };
  if (pathname === "/_harness/stats") return stats;
  if (pathname === "/_harness/faults" && req.method === "GET") return { ...faults, indexProgressFor: undefined };
  if (pathname === "/_harness/faults" && req.method === "POST") {
    const body = await jsonBody(req);
    if (typeof body.latencyMs === "number") latencyMs = body.latencyMs;
    faults = { ...defaultFaults(), ...body, indexProgressFor: new Map() };
    rngState = faults.seed | 0;
    return { ...faults, indexProgressFor: undefined };
  }
  if (pathname === "/_harness/split" && req.method === "POST") return splitRange(account, await jsonBody(req), res);
  if (pathname === "/_harness/ranges" && req.method === "GET") return describeRanges(account, req.url, res);
  if (pathname === "/_harness/epk" && req.method === "POST") return effectiveKeys(await jsonBody(req));
  res.statusCode = 404;
  return { message: "unknown harness route" };
}

// ---------------------------------------------------------------------------------------------
// The request pipeline (replaces the package's, which closes every connection).
// ---------------------------------------------------------------------------------------------
const delay = (ms) => new Promise(resolve => setTimeout(resolve, ms));

function send(req, res, body) {
  stats.requests += 1;
  stats.byStatus[res.statusCode] = (stats.byStatus[res.statusCode] || 0) + 1;
  // "PATCH 200", "PUT 412", …: lets tests prove that each document was written exactly once.
  const methodKey = `${req.method} ${res.statusCode}`;
  stats.byMethod[methodKey] = (stats.byMethod[methodKey] || 0) + 1;
  // "aad", "master", …: the authorization type each request carried (auth.js).
  if (req.authType) {
    stats.byAuth[req.authType] = (stats.byAuth[req.authType] || 0) + 1;
    if (req.containerName) {
      const authKey = `${req.containerName} ${req.authType}`;
      stats.byContainerAuth[authKey] = (stats.byContainerAuth[authKey] || 0) + 1;
    }
  }
  if (req.containerName && /\/docs/.test(req.url || "")) {
    const key = `${req.containerName} ${methodKey}`;
    stats.byContainer[key] = (stats.byContainer[key] || 0) + 1;
    // "users 1 429": requests (and their answers) per container and range, for fairness tests.
    for (const id of req.rangeIds || []) {
      const rangeKey = `${req.containerName} ${id} ${res.statusCode}`;
      stats.byRange[rangeKey] = (stats.byRange[rangeKey] || 0) + 1;
    }
  }
  if (body && body._etag && !res.getHeader("etag")) res.setHeader("etag", body._etag);
  res.setHeader("content-type", "application/json");
  res.setHeader("x-ms-activity-id", crypto.randomUUID());
  res.setHeader("x-ms-request-charge", String(faults.requestCharge == null ? 1 : faults.requestCharge));
  if (res.statusCode === 304 || body === null || body === undefined) { res.end(); return; }
  res.end(JSON.stringify(body));
}

// The emulator's published key (public knowledge): master-key signatures are verified with it.
const EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

function createHandler(account, key = EMULATOR_KEY) {
  return async (req, res) => {
    try {
      if ((req.url || "").startsWith("/_harness/")) { send(req, res, await harnessRoute(account, req, res)); return; }
      if (latencyMs > 0) await delay(latencyMs);
      const route = resolveRoute(req);
      // The SDK addresses containers by name or by resource id: count them under their name.
      const params = route ? route[0] : {};
      if (params.dbId && params.collId) {
        const collection = account.database(params.dbId).collection(params.collId);
        const data = collection.read();
        req.containerName = data ? data.id : params.collId;
        if (data && /\/docs/.test(req.url || "")) req.rangeIds = targetRanges(collection, req);
      }
      const refused = authorize(req, res, faults, (account.read() || {}).id || "localhost", key);
      if (refused) { await readBody(req).catch(() => {}); send(req, res, refused); return; }
      const fault = pickFault(req);
      if (fault) {
        stats.injected[fault] += 1;
        if (fault === "drop") { req.socket.destroy(); return; }
        await readBody(req).catch(() => {});
        res.statusCode = Number(fault);
        if (fault === "429") {
          res.setHeader("x-ms-retry-after-ms", String(faults.retryAfterMs));
          res.setHeader("x-ms-substatus", "3200");
        }
        send(req, res, { code: fault === "429" ? "TooManyRequests" : fault === "503" ? "ServiceUnavailable" : "RequestTimeout", message: `Injected fault ${fault} (test harness)` });
        return;
      }
      if (faults.rateDelay > 0 && random() < faults.rateDelay) { stats.injected.delay += 1; await delay(faults.delayMs); }

      if (!route) { res.statusCode = 400; send(req, res, { code: "BadRequest", message: "no route" }); return; }
      if (isTooLargeItem(req)) {
        await readBody(req).catch(() => {});
        res.statusCode = 413;
        send(req, res, { code: "RequestEntityTooLarge", message: "Request size is too large" });
        return;
      }
      const handler = route[1];
      let body;
      try {
        body = await handler(account, req, res, params);
      } catch (err) {
        console.error(err);
        res.statusCode = 500;
        body = { code: "InternalServerError", message: err.message };
      }
      if (res.statusCode > 399 && body && !body.message) body.message = "";
      send(req, res, body);
    } catch (err) {
      console.error(err);
      if (!res.headersSent) { res.statusCode = 500; res.end(); }
    }
  };
}

// The service refuses an item larger than 2 MB (413, "Request size is too large"); the package
// stored anything. Item creates, upserts and replaces only (a query's body is its text).
const MAX_ITEM_BYTES = 2 * 1024 * 1024;
function isTooLargeItem(req) {
  const path = (req.url || "").split("?")[0];
  const query = /query\+json/.test(String(req.headers["content-type"] || "")) || isTrue(req, "x-ms-cosmos-is-query-plan-request");
  return (req.method === "PUT" || req.method === "POST") && !query && /\/docs(\/[^/]+)?\/?$/.test(path)
    && Number(req.headers["content-length"] || 0) > MAX_ITEM_BYTES;
}

function resolveRoute(req) {
  // The query-plan request is a POST to /docs that the package's router would treat as a create.
  if (req.method === "POST" && isTrue(req, "x-ms-cosmos-is-query-plan-request")) {
    const match = /^\/+dbs\/([^/]+)\/colls\/([^/]+)\/docs\/?$/.exec((req.url || "").split("?")[0]);
    if (match) return [{ dbId: decodeURIComponent(match[1]), collId: decodeURIComponent(match[2]) }, queryPlanRequest];
  }
  return overrides(req) || packageRoutes(req);
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------
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

function start(args, port) {
  const handlerHolder = {};
  const onRequest = (req, res) => handlerHolder.handle(req, res);
  const server = args.ssl
    ? https.createServer({
      cert: fs.readFileSync(path.join(packageDir, "cert.pem")),
      key: fs.readFileSync(path.join(packageDir, "key.pem")),
      keepAlive: true
    }, onRequest)
    : http.createServer({ keepAlive: true }, onRequest);
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;
  server.on("error", (err) => {
    if (err.code === "EADDRINUSE" && args.portFallback && port !== 0) { start(args, 0); return; }
    console.error(`cannot listen on ${args.host}:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, args.host, () => {
    const actual = server.address().port;
    const hostName = args.host === "127.0.0.1" ? "localhost" : args.host;
    const account = new Account(hostName, actual);
    handlerHolder.handle = createHandler(account, args.key);
    require("./ttl").startSweeper(account); // per-item TTL (ttl.js says why)
    latencyMs = args.latencyMs || 0;
    defaultPartitions = args.partitions;
    const state = { endpoint: `${args.ssl ? "https" : "http"}://${hostName}:${actual}/`, pid: process.pid, port: actual, partitions: args.partitions };
    if (args.stateFile) fs.writeFileSync(args.stateFile, JSON.stringify(state));
    console.log(JSON.stringify(state));
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
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
  start(args, args.port);
}

