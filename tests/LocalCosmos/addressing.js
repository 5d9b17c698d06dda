// Fix 11 — addressing. What a request is addressed to: its container, the range(s) it names and
// the documents it may see. The SDK addresses a query, a read feed or a change feed to a physical
// range (`x-ms-documentdb-partitionkeyrangeid`), to part of one (`x-ms-start-epk` /
// `x-ms-end-epk` with `x-ms-read-key-type: EffectivePartitionKeyRange`), or to a partition key
// (`x-ms-documentdb-partitionkey`, a prefix of a hierarchical key too); point operations send
// only the key. The package ignored all three. A range that split is gone: the handlers answer
// 410 with substatus 1002 (wire.js), after which the SDK re-reads /pkranges and retries on the
// children.
"use strict";

const { MAX_EPK, canonicalKey, keyValues, matchesKey, requestKeyValues } = require("./partitioning");
const { definitionOfItems, partitionsOf, windowOrder } = require("./store");
const { header } = require("./wire");

/// The container a route names, or null when it does not exist.
function collectionOf(account, { dbId, collId }) {
  const collection = account.database(dbId).collection(collId);
  return collection.read() ? collection : null;
}

/// The range id a request names (the SDK may send "parent,child": the last one is the target).
function rangeIdOf(req) {
  const value = header(req, "x-ms-documentdb-partitionkeyrangeid");
  return value ? String(value).split(",").pop().trim() : null;
}

/// The documents a query or feed may see: { map, range, min, max, key, rids, documents(from, to) },
/// or { gone: id } for a range that split.
function requestScope(collection, req) {
  const items = collection.documents;
  const map = partitionsOf(items);
  let min = "";
  let max = MAX_EPK;
  let range = null;
  const id = rangeIdOf(req);
  if (id !== null) {
    range = map.rangeById(id);
    if (!range) return { gone: id };
    min = range.minInclusive;
    max = range.maxExclusive;
  }
  const start = header(req, "x-ms-start-epk");
  const end = header(req, "x-ms-end-epk");
  if (start !== undefined && start > min) min = start;
  if (end !== undefined && end !== "" && end < max) max = end;
  const key = requestKeyValues(req);
  // The range whose LSN a change feed reports: the addressed one, else the key's.
  if (!range) range = key !== undefined ? map.rangeOf(map.epkOf(key)) : map.rangeOf(min);
  const rids = windowOrder(items, min, max);
  const definition = map.definition;
  const documents = (from = 0, to = Infinity) => {
    const docs = (from === 0 && to === Infinity ? rids : rids.slice(from, to)).map(rid => items._data.get(rid).read());
    return key === undefined ? docs : docs.filter(doc => matchesKey(keyValues(definition, doc), key));
  };
  return { map, range, min, max, key, rids, documents };
}

/// The ranges a /docs request is addressed to, for per-range faults and counts: the range id it
/// names, or the range(s) of its partition key (a prefix of a hierarchical key may span several);
/// none for a cross-partition request.
function targetRanges(collection, req) {
  const map = partitionsOf(collection.documents);
  const id = rangeIdOf(req);
  if (id !== null) return [id];
  const key = requestKeyValues(req);
  if (key === undefined) return [];
  const epk = map.epkOf(key);
  if (map.definition.kind !== "MultiHash" || key.length >= map.definition.paths.length) return [map.rangeOf(epk).id];
  const end = `${epk}FF`;
  return map.live.filter(r => r.maxExclusive > epk && r.minInclusive < end).map(r => r.id);
}

/// The request's partition key in the store's form (Fix 10, store.js). A point operation without
/// the header addresses the id as key on an /id-keyed container, as the package did.
function partitionOfRequest(collection, req, docId) {
  const key = requestKeyValues(req);
  if (key !== undefined) return canonicalKey(key);
  const raw = header(req, "x-ms-documentdb-partitionkey");
  if (raw && /^\s*\[\s*\{\s*\}\s*\]\s*$/.test(raw)) return canonicalKey([undefined]);
  const definition = definitionOfItems(collection.documents);
  return canonicalKey(definition.paths.length === 1 && definition.paths[0] === "/id" ? [docId] : [undefined]);
}

module.exports = { collectionOf, partitionOfRequest, requestScope, targetRanges };
