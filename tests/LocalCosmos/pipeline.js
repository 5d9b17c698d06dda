// The request pipeline, in place of the package's: every request is authorized (auth.js),
// perhaps faulted or delayed (faults.js), routed (routes.js) and counted (stats.js), and every
// answer carries the headers the SDK reads on all of them.
"use strict";

const crypto = require("crypto");
const { authorize } = require("./auth");
const { targetRanges } = require("./addressing");
const faults = require("./faults");
const { harnessRoute } = require("./harness");
const { isTooLargeItem, resolveRoute } = require("./routes");
const { countInjected, countRequest } = require("./stats");
const { discardBody, fail, pathOf } = require("./wire");

const delay = (ms) => new Promise(resolve => setTimeout(resolve, ms));

function send(req, res, body) {
  countRequest(req, res);
  if (body && body._etag && !res.getHeader("etag")) res.setHeader("etag", body._etag);
  res.setHeader("content-type", "application/json");
  res.setHeader("x-ms-activity-id", crypto.randomUUID());
  const charge = faults.current().requestCharge;
  res.setHeader("x-ms-request-charge", String(charge == null ? 1 : charge));
  if (res.statusCode === 304 || body === null || body === undefined || minimalAnswer(req, res)) { res.end(); return; }
  res.end(JSON.stringify(body));
}

/// A write that asked for no content (`Prefer: return=minimal`, what the SDK sends for a document
/// write when `EnableContentResponseOnWrite` is false) is answered with its status and headers
/// only, as the service answers it. The package sent the whole document back: every guarded patch
/// and tracking write then cost this server a serialisation and the client a read that a real
/// account never makes them pay.
function minimalAnswer(req, res) {
  return res.statusCode < 300 && req.method !== "GET" && /return=minimal/i.test(req.headers.prefer || "");
}

/// Names the container a request addresses (the SDK addresses it by name or by resource id:
/// counts and faults go by its name) and, for /docs, the ranges it reaches.
function markTarget(account, req, params) {
  if (!params.dbId || !params.collId) return;
  const collection = account.database(params.dbId).collection(params.collId);
  const data = collection.read();
  req.containerName = data ? data.id : params.collId;
  if (data && /\/docs/.test(req.url || "")) req.rangeIds = targetRanges(collection, req);
}

/// Answers an injected fault, or returns false when the request goes on (perhaps delayed).
async function injectFault(req, res) {
  const fault = faults.pickFault(req);
  if (fault) {
    countInjected(fault);
    if (fault === "drop") { req.socket.destroy(); return true; }
    await discardBody(req);
    send(req, res, faults.faultAnswer(fault, res));
    return true;
  }
  const held = faults.injectedDelay();
  if (held !== null) { countInjected("delay"); await delay(held); }
  return false;
}

/// The (req, res) handler of an account; `key` is the account key master-key requests are signed with.
function createHandler(account, key) {
  return async (req, res) => {
    try {
      if (pathOf(req).startsWith("/_harness/")) { send(req, res, await harnessRoute(account, req, res)); return; }
      if (faults.latency() > 0) await delay(faults.latency());
      const route = resolveRoute(req);
      const params = route ? route[0] : {};
      markTarget(account, req, params);
      const refused = authorize(req, res, faults.current(), (account.read() || {}).id || "localhost", key);
      if (refused) { await discardBody(req); send(req, res, refused); return; }
      if (await injectFault(req, res)) return;

      if (!route) { send(req, res, fail(res, 400, "BadRequest", "no route")); return; }
      if (isTooLargeItem(req)) {
        await discardBody(req);
        send(req, res, fail(res, 413, "RequestEntityTooLarge", "Request size is too large"));
        return;
      }
      const handler = route[1];
      let body;
      try {
        body = await handler(account, req, res, params);
      } catch (err) {
        console.error(err);
        body = fail(res, 500, "InternalServerError", err.message);
      }
      if (res.statusCode > 399 && body && !body.message) body.message = "";
      send(req, res, body);
    } catch (err) {
      console.error(err);
      if (!res.headersSent) { res.statusCode = 500; res.end(); }
    }
  };
}

module.exports = { createHandler };
