// Which handler answers a request: ours where the package's answer is wrong for the .NET SDK
// (the handlers say why), the package's own otherwise, and a 413 for an item past 2 MB.
"use strict";

const { fromPackage } = require("./vendor");
const { queryDocuments, queryPlanRequest, readDocuments } = require("./feeds");
const { patchDocument, readDocument, writeDocument } = require("./items");
const { createContainer, readCollection, readPartitionKeyRanges, replaceCollection } = require("./containers");
const { isTrue, pathOf } = require("./wire");

const packageRoutes = fromPackage("@vercel/cosmosdb-server/lib/routes").default;
const routerFactory = fromPackage("@vercel/cosmosdb-server/lib/router").default;

const write = (operation) => (account, req, res, params) => writeDocument(account, req, res, params, operation);

const overrides = routerFactory({
  GET: {
    "/dbs/:dbId/colls/:collId/pkranges": readPartitionKeyRanges,
    "/dbs/:dbId/colls/:collId/docs/:docId": readDocument,
    "/dbs/:dbId/colls/:collId/docs": readDocuments,
    "/dbs/:dbId/colls/:collId": readCollection
  },
  PATCH: { "/dbs/:dbId/colls/:collId/docs/:docId": patchDocument },
  POST: {
    "/dbs/:dbId/colls/:collId/docs": write("create"),
    "/dbs/:dbId/colls": createContainer
  },
  POST_UPSERT: { "/dbs/:dbId/colls/:collId/docs": write("upsert") },
  POST_QUERY: { "/dbs/:dbId/colls/:collId/docs": queryDocuments },
  PUT: {
    "/dbs/:dbId/colls/:collId/docs/:docId": write("replace"),
    "/dbs/:dbId/colls/:collId": replaceCollection
  },
  DELETE: { "/dbs/:dbId/colls/:collId/docs/:docId": write("delete") }
});

const isPlanRequest = (req) => isTrue(req, "x-ms-cosmos-is-query-plan-request");

/// [params, handler] of a request, or undefined when no route takes it.
function resolveRoute(req) {
  // The query-plan request is a POST to /docs that the package's router would treat as a create.
  if (req.method === "POST" && isPlanRequest(req)) {
    const match = /^\/+dbs\/([^/]+)\/colls\/([^/]+)\/docs\/?$/.exec(pathOf(req));
    if (match) return [{ dbId: decodeURIComponent(match[1]), collId: decodeURIComponent(match[2]) }, queryPlanRequest];
  }
  return overrides(req) || packageRoutes(req);
}

// The service refuses an item larger than 2 MB (413, "Request size is too large"); the package
// stored anything. Item creates, upserts and replaces only (a query's body is its text).
const MAX_ITEM_BYTES = 2 * 1024 * 1024;
function isTooLargeItem(req) {
  const query = /query\+json/.test(String(req.headers["content-type"] || "")) || isPlanRequest(req);
  return (req.method === "PUT" || req.method === "POST") && !query && /\/docs(\/[^/]+)?\/?$/.test(pathOf(req))
    && Number(req.headers["content-length"] || 0) > MAX_ITEM_BYTES;
}

module.exports = { isTooLargeItem, resolveRoute };
