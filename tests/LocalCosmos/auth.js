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
// An account key's signature (`type=master&ver=1.0&sig=<base64>`) is verified as the service
// verifies it: HMAC-SHA256, with the key, over "verb\nresource type\nresource link\ndate\n\n"
// (verb, type and date lower-cased; the link as sent, a resource id's lower-cased); a wrong key,
// a missing date or no authorization at all is a 401 with the service's message shape, so the
// module's AuthenticationFailed path runs end to end. The key is the emulator's published one
// (--key replaces it).
// Every request's authorization type is counted (stats `byAuth`, and `byContainerAuth` as
// "users aad"), so a test can prove what went over the wire.

"use strict";

const crypto = require("crypto");
const { fail, pathOf } = require("./wire");

// The emulator's published key (public knowledge): master-key signatures are verified with it
// unless --key names another.
const EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

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
  if (type === "master") return { type, sig: fields.sig || "" };
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
  const pathname = pathOf(req);
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
  const pathname = pathOf(req).replace(/^\/+|\/+$/g, "");
  return pathname ? `/${pathname}` : "/";
}

function forbidden(res, account, oid, action, resource) {
  res.setHeader("x-ms-substatus", "5301");
  return fail(res, 403, "Forbidden", `Request blocked by Auth ${account} : Request is blocked because principal [${oid}] does not have required RBAC permissions to perform action [${action}] on resource [${resource}]. Learn more: https://aka.ms/cosmos-native-rbac.`);
}

/// What a master-key signature covers: the resource type is the path's last type segment, the
/// link the path up to the resource (a feed's link is its parent's), e.g. POST /dbs/d/colls/c/docs
/// signs "docs" and "dbs/d/colls/c"; the account root signs "" and "".
function signedResourceOf(req) {
  const segments = pathOf(req).split("/").filter(Boolean).map(s => { try { return decodeURIComponent(s); } catch (e) { return s; } });
  if (segments.length === 0) return { type: "", link: "" };
  if (segments.length % 2 === 0) return { type: segments[segments.length - 2], link: segments.join("/") };
  return { type: segments[segments.length - 1], link: segments.slice(0, -1).join("/") };
}

const unauthorized = (res, message) => fail(res, 401, "Unauthorized", message);

/// A master-key request whose signature is not the key's: 401 as the service answers it.
function verifyMasterKey(req, res, auth, key) {
  const date = req.headers["x-ms-date"] || req.headers.date;
  if (!date) return unauthorized(res, "Required Header authorization is missing. Ensure a valid Authorization token is defined for the request, and that the x-ms-date header is set.");
  const { type, link } = signedResourceOf(req);
  const payloadOf = l => `${(req.method || "").toLowerCase()}\n${type.toLowerCase()}\n${l}\n${String(date).toLowerCase()}\n\n`;
  const secret = Buffer.from(key, "base64");
  // A name-based request signs its link as sent; one addressed by resource ids (the SDK reads
  // partition key ranges as /dbs/<rid>/colls/<rid>/pkranges) signs only the resource's own id,
  // lower-cased: here, the link's last segment.
  const ridLink = link.split("/").pop().toLowerCase();
  const signatures = [link, ridLink].map(l => crypto.createHmac("sha256", secret).update(payloadOf(l), "utf8").digest("base64"));
  if (signatures.includes(auth.sig)) return null;
  return unauthorized(res, "The input authorization token can't serve the request. The wrong key is being used or the expected payload is not built as per the protocol. " +
    `For more info: https://aka.ms/cosmosdb-tsg-401. Server used the following payload to sign: '${payloadOf(link).replace(/\n/g, "\\n")}'`);
}

/// The answer to a request its token does not allow, or null when it may go on.
function authorize(req, res, settings, account, key) {
  const auth = authorizationOf(req);
  req.authType = auth.type;
  if (auth.type === "none") return unauthorized(res, "Required Header authorization is missing. Ensure a valid Authorization token is defined for the request.");
  if (auth.type === "master") return verifyMasterKey(req, res, auth, key);
  if (auth.type !== "aad") return null;
  if (auth.malformed) {
    return unauthorized(res, `Request blocked by Auth ${account} : the AAD token is malformed (expected type=aad&ver=1.0&sig=<JWT>).`);
  }
  const claims = auth.claims || {};
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== "number" || claims.exp <= now) {
    return unauthorized(res, `Request blocked by Auth ${account} : The AAD token has expired (exp ${claims.exp}, now ${now}). Acquire a new token.`);
  }
  const oid = claims.oid || claims.sub || "unknown";
  // `methods` (shared with the fault settings) narrows a denial to some operations, as a custom
  // role that allows reads but not writes would.
  const denied = Array.isArray(settings.aadDenied) && settings.aadDenied.some(d => d === "*" || d === oid) &&
    (!Array.isArray(settings.methods) || settings.methods.includes(req.method));
  const action = actionOf(req);
  if (denied) return forbidden(res, account, oid, action || `${"Microsoft.DocumentDB/databaseAccounts"}/readMetadata`, resourceOf(req));
  if (action === null) {
    const isContainer = /\/colls(\/|$)/.test(pathOf(req));
    return forbidden(res, account, oid, `Microsoft.DocumentDB/databaseAccounts/sqlDatabases/${isContainer ? "containers/" : ""}write`, resourceOf(req));
  }
  return null;
}

module.exports = { EMULATOR_KEY, authorize, authorizationOf };
