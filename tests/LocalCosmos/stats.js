// Request counts for GET /_harness/stats: tests prove what went over the wire with them (each
// document written exactly once, one range throttled and not the others, a run carrying only
// Entra ID authorization), which no answer of the Cosmos protocol tells.
"use strict";

const stats = { requests: 0, byStatus: {}, byMethod: {}, byContainer: {}, byRange: {}, byAuth: {}, byContainerAuth: {}, injected: { 429: 0, 503: 0, 408: 0, drop: 0, delay: 0 } };

const bump = (table, key) => { table[key] = (table[key] || 0) + 1; };

/// Counts an answered request. `req.containerName` and `req.rangeIds` are set by the pipeline,
/// `req.authType` by auth.js.
function countRequest(req, res) {
  stats.requests += 1;
  bump(stats.byStatus, res.statusCode);
  // "PATCH 200", "PUT 412", …: lets tests prove that each document was written exactly once.
  const methodKey = `${req.method} ${res.statusCode}`;
  bump(stats.byMethod, methodKey);
  // "aad", "master", …: the authorization type each request carried (auth.js).
  if (req.authType) {
    bump(stats.byAuth, req.authType);
    if (req.containerName) bump(stats.byContainerAuth, `${req.containerName} ${req.authType}`);
  }
  if (req.containerName && /\/docs/.test(req.url || "")) {
    bump(stats.byContainer, `${req.containerName} ${methodKey}`);
    // "users 1 429": requests (and their answers) per container and range, for fairness tests.
    for (const id of req.rangeIds || []) bump(stats.byRange, `${req.containerName} ${id} ${res.statusCode}`);
  }
}

/// Counts a fault the pipeline injected ("429", "503", "408", "drop", "delay").
const countInjected = (kind) => { stats.injected[kind] += 1; };

module.exports = { countInjected, countRequest, stats };
