// Fault injection and simulated network distance, for the reliability tests and the benchmark:
// the service throttles (429), fails (503, 408), drops and slows requests under load, one
// physical partition at a time. Tests set the share of each by POST /_harness/faults (harness.js);
// the pipeline (pipeline.js) asks here, per request, which fault if any to answer with.
"use strict";

const { pathOf } = require("./wire");

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

let settings = defaultFaults();
let latencyMs = 0; // added to every answer (--latency-ms, or latencyMs in the settings)

// A small seeded generator (mulberry32), so a failing fault run can be replayed.
let rngState = 1;
function random() {
  rngState = (rngState + 0x6d2b79f5) | 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/// The settings as GET /_harness/faults shows them (the per-container progress queues are inner state).
const view = () => ({ ...settings, indexProgressFor: undefined });

/// POST /_harness/faults: the body replaces every setting ({} clears them) and restarts the
/// generator from its seed; a latency stays until one is set again.
function configure(body) {
  if (typeof body.latencyMs === "number") latencyMs = body.latencyMs;
  settings = { ...defaultFaults(), ...body, indexProgressFor: new Map() };
  rngState = settings.seed | 0;
  return view();
}

/// The fault to answer a request with ("429", "503", "408", "drop"), or null. `req.rangeIds` are
/// the ranges it is addressed to (addressing.js).
function pickFault(req) {
  if (!new RegExp(settings.pathPattern).test(pathOf(req))) return null;
  if (settings.methods && !settings.methods.includes(req.method)) return null;
  if (Array.isArray(settings.ranges) && !(req.rangeIds || []).some(id => settings.ranges.map(String).includes(id))) return null;
  const r = random();
  let edge = 0;
  for (const [kind, rate] of [["429", settings.rate429], ["503", settings.rate503], ["408", settings.rate408], ["drop", settings.rateDrop]]) {
    edge += rate || 0;
    if (r < edge) return kind;
  }
  return null;
}

/// The answer of an injected 429, 503 or 408, as the service shapes it (429: retry after, 3200).
function faultAnswer(kind, res) {
  res.statusCode = Number(kind);
  if (kind === "429") {
    res.setHeader("x-ms-retry-after-ms", String(settings.retryAfterMs));
    res.setHeader("x-ms-substatus", "3200");
  }
  return { code: kind === "429" ? "TooManyRequests" : kind === "503" ? "ServiceUnavailable" : "RequestTimeout", message: `Injected fault ${kind} (test harness)` };
}

/// How long to hold a request that was not faulted (rateDelay), or null when it goes on at once.
const injectedDelay = () => (settings.rateDelay > 0 && random() < settings.rateDelay ? settings.delayMs : null);

// Index transformation progress: a replaced container reports the scripted `indexProgress`
// values on its next reads (containers.js), then 100.
function scriptIndexProgress(containerKey) {
  settings.indexProgressFor.set(containerKey, (settings.indexProgress || []).slice());
}

function nextIndexProgress(containerKey) {
  const queue = settings.indexProgressFor.get(containerKey);
  return queue && queue.length ? queue.shift() : 100;
}

module.exports = {
  configure,
  current: () => settings,
  faultAnswer,
  injectedDelay,
  latency: () => latencyMs,
  nextIndexProgress,
  pickFault,
  scriptIndexProgress,
  setLatency: (ms) => { latencyMs = ms; },
  view
};
