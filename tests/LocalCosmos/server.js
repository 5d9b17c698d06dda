#!/usr/bin/env node
// Local Cosmos DB (NoSQL API) protocol server for CosmosMigrations tests, demo and benchmark.
//
// It runs the request handlers of @vercel/cosmosdb-server 1.0.1 behind a request pipeline of our
// own, because the package's CLI closes every connection and several of its handlers do not
// answer what the .NET SDK (Microsoft.Azure.Cosmos 3.x) needs. Each override below says why it
// exists; ../../../shared/notes/local-cosmos-server.md has the measurements behind them.
//
// Usage: node server.js [--port 8081] [--host 127.0.0.1] [--no-ssl] [--port-fallback]
//                       [--latency-ms 0] [--state-file path] [--log-file path]
// On start it prints one JSON line {"endpoint": ..., "pid": ...} (and writes it to --state-file).
//
// Test hooks (not part of the Cosmos protocol), under /_harness/:
//   GET  /_harness/health           -> {"ok": true}
//   GET  /_harness/faults           -> the fault settings in force
//   POST /_harness/faults  {...}    -> replace them (see defaultFaults); {} clears
//   GET  /_harness/stats            -> request counts by status, faults injected

"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");
const crypto = require("crypto");

const packageDir = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json"));
const fromPackage = (m) => require(require.resolve(m, { paths: [packageDir] }));

// ---------------------------------------------------------------------------------------------
// Fix 1 — query cost. The SQL engine compiles every query to JavaScript that builds its working
// set with `$c.reduce(($, c) => [...$, {c}], [])`: copying the accumulator on every element makes
// each page O(N^2) (2 s a page at 20,000 documents). We rewrite, in the generated syntax tree,
// every array literal that starts with `...$` into `($.push(rest), $)`: same result, O(N).
// The accumulator is always a fresh `[]` of that reduce call, so mutating it is safe.
// ---------------------------------------------------------------------------------------------
const transformer = fromPackage("@zeit/cosmosdb-query/lib/transformer");
const originalTransform = transformer.default;

function isAccumulatorSpread(node) {
  return node && node.type === "ArrayExpression" && node.elements.length > 0 &&
    node.elements[0] && node.elements[0].type === "SpreadElement" &&
    node.elements[0].argument.type === "Identifier" && node.elements[0].argument.name === "$";
}

function rewriteAccumulatorSpreads(node) {
  if (!node || typeof node !== "object") return node;
  if (Array.isArray(node)) return node.map(rewriteAccumulatorSpreads);
  for (const key of Object.keys(node)) node[key] = rewriteAccumulatorSpreads(node[key]);
  if (isAccumulatorSpread(node)) {
    const acc = { type: "Identifier", name: "$" };
    return {
      type: "SequenceExpression",
      expressions: [
        {
          type: "CallExpression",
          callee: { type: "MemberExpression", object: acc, property: { type: "Identifier", name: "push" }, computed: false },
          arguments: node.elements.slice(1)
        },
        acc
      ]
    };
  }
  return node;
}

transformer.default = (ast) => rewriteAccumulatorSpreads(originalTransform(ast));

// Fix 1c — the executor evaluates the generated code with `new Function` on every execution, so
// each page ran brand-new closures that the JIT never optimises (~60 ms a page at 20,000
// documents). The same code text always yields the same function: compile it once.
const executor = fromPackage("@zeit/cosmosdb-query/lib/executor");
const aggregateFunctions = fromPackage("@zeit/cosmosdb-query/lib/aggregate-functions");
const builtinFunctions = fromPackage("@zeit/cosmosdb-query/lib/builtin-functions");
const queryHelpers = fromPackage("@zeit/cosmosdb-query/lib/helpers");
const compiledCode = new Map();
executor.default = (collection, { code, parameters, udf = {}, maxItemCount, continuation, compositeIndexes }) => {
  let execute = compiledCode.get(code);
  if (!execute) {
    execute = new Function(`"use strict";return (${code})`)(); // eslint-disable-line no-new-func
    compiledCode.set(code, execute);
  }
  const params = {};
  (parameters || []).forEach(({ name, value }) => { params[name.slice(1)] = value; });
  return execute(aggregateFunctions, builtinFunctions, collection, queryHelpers, udf, params, maxItemCount, continuation, compositeIndexes);
};

const Account = fromPackage("@vercel/cosmosdb-server/lib/account").default;
const packageRoutes = fromPackage("@vercel/cosmosdb-server/lib/routes").default;
const routerFactory = fromPackage("@vercel/cosmosdb-server/lib/router").default;
const Items = fromPackage("@vercel/cosmosdb-server/lib/account/items").default;
const { patchOperation } = fromPackage("@vercel/cosmosdb-server/lib/handler/_patch-operations");
const createQuery = fromPackage("@zeit/cosmosdb-query").default;
const { SyntaxError: QuerySyntaxError } = fromPackage("@zeit/cosmosdb-query");
const readBody = fromPackage("raw-body");
const continuationTokens = fromPackage("@zeit/cosmosdb-query/lib/continuation-token");

// Compiling a query costs a few milliseconds; a paged scan sends the same text for every page.
const compiledQueries = new Map();
function compileQuery(sql) {
  let q = compiledQueries.get(sql);
  if (!q) {
    q = createQuery(sql);
    if (compiledQueries.size >= 500) compiledQueries.delete(compiledQueries.keys().next().value);
    compiledQueries.set(sql, q);
  }
  return q;
}

// ---------------------------------------------------------------------------------------------
// Fix 2 — change feed. The package answers one page, then 304 forever. Every write now stamps a
// per-container sequence number (the LSN of the real service), kept beside the item rather than
// in it so that stored documents stay exactly as written. The change feed returns each changed
// document once, at its latest version, in LSN order, and its ETag is the last LSN returned.
// ---------------------------------------------------------------------------------------------
const originalSet = Items.prototype._set;
Items.prototype._set = function setWithLsn(data) {
  const stored = originalSet.call(this, data);
  if (!this._lsnByRid) { this._lsnByRid = new Map(); this._lsn = 0; }
  this._lsn += 1;
  this._lsnByRid.set(stored._rid, this._lsn);
  return stored;
};
const originalDelete = Items.prototype.delete;
Items.prototype.delete = function deleteWithLsn(idOrRid, partition) {
  const existing = this._item("/id", idOrRid, partition).read();
  originalDelete.call(this, idOrRid, partition);
  if (existing && this._lsnByRid && !this._replacing) this._lsnByRid.delete(existing._rid);
  if (!this._replacing) this._ridOrder = null;
};

// ---------------------------------------------------------------------------------------------
// Fix 1b — query cost, continued. Every query sorts its input by `_rid` with a generic
// comparator; the package hands it documents in Map order (a replace moves a document to the
// end), so each page paid a full O(N log N) sort (~80 ms at 20,000 documents). A document's
// `_rid` never changes, so the rid order is cached until a document is created or deleted (a
// replace is a delete + set inside the package: not a membership change), and the engine's sort
// of an already sorted input is a single linear pass.
// ---------------------------------------------------------------------------------------------
const originalCreate = Items.prototype.create;
Items.prototype.create = function createAndForgetOrder(data) {
  const stored = originalCreate.call(this, data);
  this._ridOrder = null;
  return stored;
};
const originalReplace = Items.prototype.replace;
Items.prototype.replace = function replaceKeepingOrder(data, original) {
  this._replacing = true;
  try { return originalReplace.call(this, data, original); } finally { this._replacing = false; }
};
function ridOrder(items) {
  if (!items._ridOrder) items._ridOrder = [...items._data.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return items._ridOrder;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
const isTrue = (req, name) => String(req.headers[name] || "").toLowerCase() === "true";

async function jsonBody(req) {
  const raw = await readBody(req);
  return raw.length ? JSON.parse(raw.toString()) : {};
}

function partitionPaths(collectionData) {
  const paths = ((collectionData || {}).partitionKey || {}).paths || ["/id"];
  return paths.map(p => p.slice(1).split("/"));
}

function valueAt(doc, segments) {
  let current = doc;
  for (const s of segments) {
    if (current === null || typeof current !== "object") return undefined;
    current = current[s];
  }
  return current;
}

// The partition key a request is scoped to, or undefined for none / cross-partition.
// The SDK sends `[{}]` for "no partition key" and `[]` for PartitionKey.None.
function requestPartitionKey(req) {
  const header = req.headers["x-ms-documentdb-partitionkey"];
  if (!header) return undefined;
  let parsed;
  try { parsed = JSON.parse(Array.isArray(header) ? header[0] : header); } catch (e) { return undefined; }
  if (!Array.isArray(parsed) || parsed.length === 0) return undefined;
  if (parsed.length === 1 && parsed[0] !== null && typeof parsed[0] === "object" && Object.keys(parsed[0]).length === 0) return undefined;
  return parsed;
}

// The documents of rid-order positions [from, to) that the request's partition key scopes it to.
function documentsInScope(collection, req, from = 0, to = Infinity) {
  const items = collection.documents;
  const rids = ridOrder(items).slice(from, to);
  const docs = rids.map(rid => items._data.get(rid).read());
  const key = requestPartitionKey(req);
  if (key === undefined) return docs;
  const paths = partitionPaths(collection.read());
  return docs.filter(doc => paths.every((p, i) => i >= key.length || valueAt(doc, p) === key[i]));
}

// Fix 1d — a page of a streamable query (no ORDER BY, aggregate, TOP, DISTINCT, GROUP BY) can
// only hold documents at or after the continuation's `_rid`: run it over a window that starts
// there and widens until it fills a page or reaches the end. Pages then cost what they return,
// not the size of the container (stored documents differ in hidden class, so every pass of the
// generated code over the whole container cost ~15 ms at 20,000 documents).
const STREAMING_BLOCKERS = /\b(ORDER\s+BY|TOP|DISTINCT|GROUP\s+BY|OFFSET|COUNT|SUM|AVG|MIN|MAX)\b/i;
function runQuery(collection, req, sql, options) {
  const query = compileQuery(sql);
  const total = ridOrder(collection.documents).length;
  const { maxItemCount, continuation } = options;
  if (!maxItemCount || maxItemCount < 0 || STREAMING_BLOCKERS.test(sql)) {
    return query.exec(documentsInScope(collection, req), options);
  }
  let from = 0;
  if (continuation && continuation.token) {
    const { RID } = continuationTokens.decode(continuation.token);
    from = lowerBound(ridOrder(collection.documents), RID);
  }
  for (let width = Math.max(4 * maxItemCount, 1000); ; width *= 2) {
    const to = from + width;
    const result = query.exec(documentsInScope(collection, req, from, to), options);
    if (result.continuation || to >= total) return result;
  }
}

function lowerBound(sorted, value) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function parseContinuation(req) {
  const header = req.headers["x-ms-continuation"];
  if (!header) return null;
  try { return JSON.parse(header); } catch (e) { return null; }
}

function pageHeaders(res, result) {
  if (result.continuation) res.setHeader("x-ms-continuation", JSON.stringify(result.continuation));
  res.setHeader("x-ms-item-count", String(result.result.length));
  return { Documents: result.result, _count: result.result.length };
}

function notFound(res) {
  res.statusCode = 404;
  return { code: "NotFound", message: "Entity with the specified id does not exist in the system." };
}

// ---------------------------------------------------------------------------------------------
// Overriding handlers
// ---------------------------------------------------------------------------------------------

// Fix 3 — query plan. Before a cross-partition query the SDK asks the gateway for a plan; the
// package has no handler for it and runs it as a query. The server has a single partition range
// and evaluates ORDER BY, TOP and aggregates itself, so a pass-through plan is exact.
function queryPlan() {
  return {
    partitionedQueryExecutionInfoVersion: 2,
    queryInfo: {
      distinctType: "None", top: null, offset: null, limit: null,
      orderBy: [], orderByExpressions: [], groupByExpressions: [], groupByAliases: [],
      aggregates: [], groupByAliasToAggregateType: {}, rewrittenQuery: "",
      hasSelectValue: false, dCountInfo: null, hasNonStreamingOrderBy: false
    },
    queryRanges: [{ min: "", max: "FF", isMinInclusive: true, isMaxInclusive: false }]
  };
}

// Fix 4 — partition-scoped queries and feeds. The package ignores the partition key header on
// queries (and rejects a query that does not name the key in its WHERE clause); here the header
// restricts the documents the query runs over, as the real service does.
async function queryDocuments(account, req, res, { dbId, collId }) {
  const body = await jsonBody(req);
  if (isTrue(req, "x-ms-cosmos-is-query-plan-request")) return queryPlan();
  if (!body.query) { res.statusCode = 400; return { code: "BadRequest", message: "missing query" }; }
  const collection = account.database(dbId).collection(collId);
  const collectionData = collection.read();
  if (!collectionData) return notFound(res);
  const maxItemCount = parseInt(req.headers["x-ms-max-item-count"] || "0", 10) || null;
  try {
    const compositeIndexes = ((collectionData.indexingPolicy || {}).compositeIndexes) || [];
    const result = runQuery(collection, req, body.query, {
      parameters: body.parameters,
      udf: collection.userDefinedFunctions.functions,
      maxItemCount,
      continuation: parseContinuation(req),
      compositeIndexes
    });
    return pageHeaders(res, result);
  } catch (err) {
    if (err instanceof QuerySyntaxError || err.badRequest || /Invalid|not supported|only valid/i.test(err.message)) {
      res.statusCode = 400;
      return { code: "BadRequest", message: err.message };
    }
    throw err;
  }
}

// GET /docs: the change feed when `A-IM: Incremental feed` is sent, else a (scoped) read feed.
async function readDocuments(account, req, res, { dbId, collId }) {
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) return notFound(res);
  const maxItemCount = parseInt(req.headers["x-ms-max-item-count"] || "0", 10) || null;
  if (String(req.headers["a-im"] || "").toLowerCase() === "incremental feed") {
    return changeFeed(collection, req, res, maxItemCount);
  }
  const result = runQuery(collection, req, "SELECT * FROM c", { maxItemCount, continuation: parseContinuation(req) });
  return pageHeaders(res, result);
}

function changeFeed(collection, req, res, maxItemCount) {
  const lsnByRid = collection.documents._lsnByRid || new Map();
  const current = collection.documents._lsn || 0;
  const ifNoneMatch = String(req.headers["if-none-match"] || "").replace(/"/g, "");
  let from = 0;
  if (ifNoneMatch === "*") from = current;               // start from now
  else if (ifNoneMatch) from = parseInt(ifNoneMatch, 10) || 0;
  let docs = documentsInScope(collection, req).map(d => [lsnByRid.get(d._rid) || 0, d]).filter(([lsn]) => lsn > from);
  const since = req.headers["if-modified-since"];
  if (since && !ifNoneMatch) {
    const ts = Math.floor(new Date(since).getTime() / 1000);
    docs = docs.filter(([, d]) => d._ts >= ts);
  }
  docs.sort((a, b) => a[0] - b[0]);
  if (maxItemCount && maxItemCount > 0) docs = docs.slice(0, maxItemCount);
  if (docs.length === 0) {
    res.statusCode = 304;
    res.setHeader("etag", `"${from}"`);
    res.setHeader("x-ms-item-count", "0"); // the SDK parses it on a 304 too
    return null;
  }
  res.setHeader("etag", `"${docs[docs.length - 1][0]}"`);
  res.setHeader("x-ms-item-count", String(docs.length));
  return { Documents: docs.map(([lsn, d]) => ({ ...d, _lsn: lsn })), _count: docs.length };
}

// Fix 5 — a missing or deleted item answered 500 (a TypeError in the package); it is a 404.
function readDocument(account, req, res, { dbId, collId, docId }) {
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) return notFound(res);
  const doc = findDocument(collection, req, docId);
  if (!doc) return notFound(res);
  return doc;
}

function findDocument(collection, req, docId) {
  const key = requestPartitionKey(req);
  const paths = partitionPaths(collection.read());
  const partition = key === undefined ? docId : key[0];
  const doc = collection.document(docId, partition).read();
  if (!doc) return undefined;
  if (key !== undefined && !paths.every((p, i) => i >= key.length || valueAt(doc, p) === key[i])) return undefined;
  return doc;
}

// Fix 6 — conditional patch. The package lower-cases the whole condition (so `c.avatarUrl`
// becomes `c.avatarurl`, always undefined) and runs it as a query over the whole container.
// Here the condition is judged, case preserved, against the one document being patched.
async function patchDocument(account, req, res, { dbId, collId, docId }) {
  const body = await jsonBody(req);
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) return notFound(res);
  const operations = Array.isArray(body) ? body : body.operations;
  if (!Array.isArray(operations)) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "Invalid patch request: check syntax of patch specification." };
  }
  const doc = findDocument(collection, req, docId);
  if (!doc) return notFound(res);
  const condition = Array.isArray(body) ? undefined : body.condition;
  if (condition) {
    const clause = /^\s*select\b/i.test(condition) ? condition : `SELECT VALUE 1 ${condition}`;
    let matched;
    try {
      matched = compileQuery(clause).exec([doc], {}).result.length > 0;
    } catch (err) {
      res.statusCode = 400;
      return { code: "BadRequest", message: `Invalid condition in patch request: ${err.message}` };
    }
    if (!matched) {
      res.statusCode = 412;
      return { code: "PreconditionFailed", message: "Condition specified in the patch request is not satisfied." };
    }
  }
  const result = patchOperation(collection, {
    id: docId,
    partitionKey: req.headers["x-ms-documentdb-partitionkey"],
    ifMatch: req.headers["if-match"],
    operations
  });
  res.statusCode = result.statusCode;
  return result.body;
}

// Fix 7 — replacing a container (to change its indexing policy) built a fresh, empty one and lost
// every document. The new definition now takes over the existing documents and functions.
async function replaceCollection(account, req, res, { dbId, collId }) {
  const body = await jsonBody(req);
  const database = account.database(dbId);
  const existing = database.collection(collId);
  const data = existing.read();
  if (!data) return notFound(res);
  if (!body.id || body.id !== data.id) { res.statusCode = 400; return { code: "BadRequest", message: "replacing id is not allowed" }; }
  if (JSON.stringify(body.partitionKey) !== JSON.stringify(data.partitionKey)) {
    res.statusCode = 400;
    return { code: "BadRequest", message: "replacing partitionKey is not allowed" };
  }
  if (req.headers["if-match"] && req.headers["if-match"] !== data._etag) {
    res.statusCode = 412;
    return { code: "PreconditionFailed", message: "Operation cannot be performed because one of the specified precondition is not met." };
  }
  const documents = existing.documents;
  const functions = existing.userDefinedFunctions;
  const replaced = database.collections.replace(body, data);
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
// gets a 304 for the ETag it holds; the ranges never change here (one range), so the first
// answer carries ETag "1" and every conditional read after it is a 304. (The package's own
// request loop did this for every `A-IM` request; ours leaves the change feed to readDocuments.)
function readPartitionKeyRanges(account, req, res, { dbId, collId }) {
  const collection = account.database(dbId).collection(collId);
  if (!collection.read()) return notFound(res);
  res.setHeader("etag", "1");
  if (req.headers["a-im"] && req.headers["if-none-match"]) {
    res.statusCode = 304;
    return null;
  }
  const ranges = collection.partitionKeyRanges.read({}).result;
  res.setHeader("x-ms-item-count", String(ranges.length));
  return { PartitionKeyRanges: ranges, _count: ranges.length };
}

const overrides = routerFactory({
  GET: {
    "/dbs/:dbId/colls/:collId/pkranges": readPartitionKeyRanges,
    "/dbs/:dbId/colls/:collId/docs/:docId": readDocument,
    "/dbs/:dbId/colls/:collId/docs": readDocuments,
    "/dbs/:dbId/colls/:collId": readCollection
  },
  PATCH: { "/dbs/:dbId/colls/:collId/docs/:docId": patchDocument },
  POST_QUERY: { "/dbs/:dbId/colls/:collId/docs": queryDocuments },
  PUT: { "/dbs/:dbId/colls/:collId": replaceCollection }
});

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
    requestCharge: null, // number: x-ms-request-charge of every answer (default 1)
    indexProgress: [],   // values the next reads of a replaced container report, then 100
    seed: 1,
    indexProgressFor: new Map()
  };
}
let faults = defaultFaults();
let latencyMs = 0;
const stats = { requests: 0, byStatus: {}, byMethod: {}, byContainer: {}, injected: { 429: 0, 503: 0, 408: 0, drop: 0, delay: 0 } };

// A small seeded generator (mulberry32), so a failing fault run can be replayed.
let rngState = 1;
function random() {
  rngState = (rngState + 0x6d2b79f5) | 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

function pickFault(req) {
  const pathname = (req.url || "").split("?")[0];
  if (!new RegExp(faults.pathPattern).test(pathname)) return null;
  if (faults.methods && !faults.methods.includes(req.method)) return null;
  const r = random();
  let edge = 0;
  for (const [kind, rate] of [["429", faults.rate429], ["503", faults.rate503], ["408", faults.rate408], ["drop", faults.rateDrop]]) {
    edge += rate || 0;
    if (r < edge) return kind;
  }
  return null;
}

async function harnessRoute(req, res) {
  const pathname = (req.url || "").split("?")[0];
  if (pathname === "/_harness/health") return { ok: true, latencyMs };
  if (pathname === "/_harness/stats") return stats;
  if (pathname === "/_harness/faults" && req.method === "GET") return { ...faults, indexProgressFor: undefined };
  if (pathname === "/_harness/faults" && req.method === "POST") {
    const body = await jsonBody(req);
    if (typeof body.latencyMs === "number") latencyMs = body.latencyMs;
    faults = { ...defaultFaults(), ...body, indexProgressFor: new Map() };
    rngState = faults.seed | 0;
    return { ...faults, indexProgressFor: undefined };
  }
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
  if (req.containerName && /\/docs/.test(req.url || "")) {
    const key = `${req.containerName} ${methodKey}`;
    stats.byContainer[key] = (stats.byContainer[key] || 0) + 1;
  }
  if (body && body._etag && !res.getHeader("etag")) res.setHeader("etag", body._etag);
  res.setHeader("content-type", "application/json");
  res.setHeader("x-ms-activity-id", crypto.randomUUID());
  res.setHeader("x-ms-request-charge", String(faults.requestCharge == null ? 1 : faults.requestCharge));
  if (res.statusCode === 304 || body === null || body === undefined) { res.end(); return; }
  res.end(JSON.stringify(body));
}

function createHandler(account) {
  return async (req, res) => {
    try {
      if ((req.url || "").startsWith("/_harness/")) { send(req, res, await harnessRoute(req, res)); return; }
      if (latencyMs > 0) await delay(latencyMs);
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

      const route = resolveRoute(req);
      if (!route) { res.statusCode = 400; send(req, res, { code: "BadRequest", message: "no route" }); return; }
      const [params, handler] = route;
      // The SDK addresses containers by name or by resource id: count them under their name.
      if (params.dbId && params.collId) {
        const collection = account.database(params.dbId).collection(params.collId).read();
        req.containerName = collection ? collection.id : params.collId;
      }
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

function resolveRoute(req) {
  // The query-plan request is a POST to /docs that the package's router would treat as a create.
  if (req.method === "POST" && isTrue(req, "x-ms-cosmos-is-query-plan-request")) {
    const match = /^\/+dbs\/([^/]+)\/colls\/([^/]+)\/docs\/?$/.exec((req.url || "").split("?")[0]);
    if (match) return [{}, async (a, rq) => { await readBody(rq); return queryPlan(); }];
  }
  return overrides(req) || packageRoutes(req);
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------
function parseArgs(argv) {
  const args = { port: 8081, host: "127.0.0.1", ssl: true, portFallback: false, latencyMs: 0, stateFile: null, logFile: null };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === "--port" || a === "-p") args.port = parseInt(argv[++i], 10);
    else if (a === "--host") args.host = argv[++i];
    else if (a === "--no-ssl") args.ssl = false;
    else if (a === "--port-fallback") args.portFallback = true;
    else if (a === "--latency-ms") args.latencyMs = parseInt(argv[++i], 10);
    else if (a === "--state-file") args.stateFile = argv[++i];
    else if (a === "--log-file") args.logFile = argv[++i];
    else { console.error(`unknown argument: ${a}`); process.exit(2); }
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
    handlerHolder.handle = createHandler(account);
    require("./ttl").startSweeper(account); // per-item TTL (ttl.js says why)
    latencyMs = args.latencyMs || 0;
    const state = { endpoint: `${args.ssl ? "https" : "http"}://${hostName}:${actual}/`, pid: process.pid, port: actual };
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
  start(args, args.port);
}

module.exports = { rewriteAccumulatorSpreads };
