// Containers and their partition key ranges: creation (how many ranges), replacement (keeping the
// documents), reads (index transformation progress) and the /pkranges feed the SDK routes by.
"use strict";

const { fromPackage } = require("./vendor");
const { PartitionMap, sameDefinition } = require("./partitioning");
const { defaults, definitionOfItems, partitionsOf } = require("./store");
const { collectionOf } = require("./addressing");
const { nextIndexProgress, scriptIndexProgress } = require("./faults");
const { badRequest, header, jsonBody, notFound, preconditionFailed } = require("./wire");

const createCollection = fromPackage("@vercel/cosmosdb-server/lib/handler/create-collection").default;

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
  items._partitions = new PartitionMap(definitionOfItems(items), throughput > 0 ? Math.ceil(throughput / 10000) : defaults.partitions);
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
    return preconditionFailed(res, "Operation cannot be performed because one of the specified precondition is not met.");
  }
  const documents = existing.documents;
  const functions = existing.userDefinedFunctions;
  const replaced = database.collections.replace({ ...body, partitionKey: data.partitionKey }, data);
  const current = database.collection(collId);
  current.documents = documents;
  current.userDefinedFunctions = functions;
  documents._parent = current;
  functions._parent = current;
  scriptIndexProgress(`${dbId}/${collId}`);
  return replaced;
}

// Index transformation progress: the package always says -1. An in-memory server indexes at
// once, so it says 100, unless a test scripted a sequence of values through /_harness/faults.
function readCollection(account, req, res, { dbId, collId }) {
  const data = account.database(dbId).collection(collId).read();
  if (!data) return notFound(res);
  res.setHeader("x-ms-documentdb-collection-index-transformation-progress", String(nextIndexProgress(`${dbId}/${collId}`)));
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

module.exports = { createContainer, readCollection, readPartitionKeyRanges, replaceCollection };
