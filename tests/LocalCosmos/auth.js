// Authorization as the service reads it. The package never looks at the `authorization` header
// (an account key is not checked here either). Keyless clients send a Microsoft Entra ID token
// instead of a key signature: `type=aad&ver=1.0&sig=<JWT>` (URL-encoded). What the service does
// with it, and this server too:
//   - a token whose `exp` has passed: 401, and nothing is done;
//   - a principal without a data-plane role assignment: 403 with substatus 5301 ("does not have
//     required RBAC permissions to perform action [...]") on every request. Which principals have
//     none is a harness setting (`aadDenied` in POST /_harness/faults: object ids, or "*");
//   - creating, replacing or deleting databases and containers with a token: 403 / 5301 always,
//     since no data-plane role includes it (they are control-plane operations).
// The token's signature, issuer and audience are not verified: tests mint their own tokens.
// Every request's authorization type is counted (stats `byAuth`, and `byContainerAuth` as
// "users aad"), so a test can prove what went over the wire.

"use strict";

/// { type: "master" | "resource" | "aad" | "none", claims, malformed } of a request.
function authorizationOf(req) {
  const raw = req.headers.authorization;
  if (!raw) return { type: "none" };
  let text = String(raw);
  try { text = decodeURIComponent(text); } catch (e) { /* as sent */ }
  const fields = {};
  for (const part of text.split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1);
  }
  const type = (fields.type || "none").toLowerCase();
  if (type !== "aad") return { type };
  const segments = String(fields.sig || "").split(".");
  if (segments.length < 2) return { type, malformed: true };
  try {
    const claims = JSON.parse(Buffer.from(segments[1].replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
    return { type, claims };
  } catch (e) {
    return { type, malformed: true };
  }
}

/// The data-plane action a request needs, named as the service names it in its 403 message.
function actionOf(req) {
  const pathname = (req.url || "").split("?")[0];
  const prefix = "Microsoft.DocumentDB/databaseAccounts";
  if (/\/docs(\/|$)/.test(pathname)) {
    const items = `${prefix}/sqlDatabases/containers/items`;
    if (req.method === "GET" || req.method === "HEAD") return `${items}/read`;
    if (req.method === "POST") {
      if (String(req.headers["x-ms-documentdb-isquery"] || "").toLowerCase() === "true" || /query/i.test(String(req.headers["content-type"] || ""))) return `${prefix}/sqlDatabases/containers/executeQuery`;
      return String(req.headers["x-ms-documentdb-is-upsert"] || "").toLowerCase() === "true" ? `${items}/upsert` : `${items}/create`;
    }
    if (req.method === "PUT") return `${items}/replace`;
    if (req.method === "PATCH") return `${items}/upsert`;
    if (req.method === "DELETE") return `${items}/delete`;
  }
  if (req.method === "GET" || req.method === "HEAD") return `${prefix}/readMetadata`;
  return null; // a control-plane write
}

function resourceOf(req) {
  const pathname = (req.url || "").split("?")[0].replace(/^\/+|\/+$/g, "");
  return pathname ? `/${pathname}` : "/";
}

function forbidden(res, account, oid, action, resource) {
  res.statusCode = 403;
  res.setHeader("x-ms-substatus", "5301");
  return {
    code: "Forbidden",
    message: `Request blocked by Auth ${account} : Request is blocked because principal [${oid}] does not have required RBAC permissions to perform action [${action}] on resource [${resource}]. Learn more: https://aka.ms/cosmos-native-rbac.`
  };
}

/// The answer to a request its token does not allow, or null when it may go on.
function authorize(req, res, settings, account) {
  const auth = authorizationOf(req);
  req.authType = auth.type;
  if (auth.type !== "aad") return null;
  if (auth.malformed) {
    res.statusCode = 401;
    return { code: "Unauthorized", message: `Request blocked by Auth ${account} : the AAD token is malformed (expected type=aad&ver=1.0&sig=<JWT>).` };
  }
  const claims = auth.claims || {};
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number" || claims.exp <= now) {
    res.statusCode = 401;
    return { code: "Unauthorized", message: `Request blocked by Auth ${account} : The AAD token has expired (exp ${claims.exp}, now ${now}). Acquire a new token.` };
  }
  const oid = claims.oid || claims.sub || "unknown";
  // `methods` (shared with the fault settings) narrows a denial to some operations, as a custom
  // role that allows reads but not writes would.
  const denied = Array.isArray(settings.aadDenied) && settings.aadDenied.some(d => d === "*" || d === oid) &&
    (!Array.isArray(settings.methods) || settings.methods.includes(req.method));
  const action = actionOf(req);
  if (denied) return forbidden(res, account, oid, action || `${"Microsoft.DocumentDB/databaseAccounts"}/readMetadata`, resourceOf(req));
  if (action === null) {
    const isContainer = /\/colls(\/|$)/.test((req.url || "").split("?")[0]);
    return forbidden(res, account, oid, `Microsoft.DocumentDB/databaseAccounts/sqlDatabases/${isContainer ? "containers/" : ""}write`, resourceOf(req));
  }
  return null;
}

module.exports = { authorize, authorizationOf };
