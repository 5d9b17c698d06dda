// Point operations on one document (read, create, upsert, replace, delete, patch): the package's
// own operations, called with the request's partition key in the store's form (Fix 10,
// store.js), and fixed where the package answered otherwise than the service.
"use strict";

const { fromPackage } = require("./vendor");
const { matchesCondition } = require("./queries");
const { collectionOf, partitionOfRequest } = require("./addressing");
const { badRequest, header, jsonBody, notFound, preconditionFailed } = require("./wire");

const { patchOperation } = fromPackage("@vercel/cosmosdb-server/lib/handler/_patch-operations");
const documentOperations = fromPackage("@vercel/cosmosdb-server/lib/handler/_document-operations");

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

// Create, upsert, replace and delete, with the header checked against the document.
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
    if (!matched) return preconditionFailed(res, "Condition specified in the patch request is not satisfied.");
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

module.exports = { patchDocument, readDocument, writeDocument };
