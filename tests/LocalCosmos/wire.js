// Requests and answers as the gateway shapes them, for every handler: header reads, JSON
// bodies, and the service's error bodies ({code, message}: the .NET SDK shows both in its
// CosmosException), so that one status is answered the same way wherever it comes from.
"use strict";

const { fromPackage } = require("./vendor");

const readBody = fromPackage("raw-body");

/// A header's first value (Node gives repeated headers as an array).
const header = (req, name) => { const v = req.headers[name]; return Array.isArray(v) ? v[0] : v; };
const isTrue = (req, name) => String(req.headers[name] || "").toLowerCase() === "true";
const pathOf = (req) => (req.url || "").split("?")[0];

async function jsonBody(req) {
  const raw = await readBody(req);
  return raw.length ? JSON.parse(raw.toString()) : {};
}

/// Reads a body nobody will use, for answers given before a handler runs (a refusal, a fault).
const discardBody = (req) => readBody(req).catch(() => {});

function fail(res, status, code, message) {
  res.statusCode = status;
  return { code, message };
}

const notFound = (res) => fail(res, 404, "NotFound", "Entity with the specified id does not exist in the system.");
const badRequest = (res, message) => fail(res, 400, "BadRequest", message);
const preconditionFailed = (res, message) => fail(res, 412, "PreconditionFailed", message);

/// A range that split: the SDK re-reads /pkranges on substatus 1002 and retries on the children.
function gone(res, id) {
  res.setHeader("x-ms-substatus", "1002");
  return fail(res, 410, "Gone", `Partition key range ${id} is gone (it split); read /pkranges again.`);
}

// LOCALCOSMOS_TRACE=1 logs every query and plan request with its addressing headers.
function trace(kind, req, body) {
  if (!process.env.LOCALCOSMOS_TRACE) return;
  const h = (n) => header(req, n);
  console.log(JSON.stringify({ kind, query: body.query, parameters: body.parameters, error: body.error, range: h("x-ms-documentdb-partitionkeyrangeid"), key: h("x-ms-documentdb-partitionkey"), epk: [h("x-ms-start-epk"), h("x-ms-end-epk")], continuation: h("x-ms-continuation") }));
}

module.exports = { badRequest, discardBody, fail, gone, header, isTrue, jsonBody, notFound, pathOf, preconditionFailed, readBody, trace };
