// The package's document store, patched where the .NET SDK needs more than it keeps: a document's
// identity (all its partition key values), its range and sequence number (LSN), and a cached
// `_rid` order for queries. Each patch replaces one method of the package's `Documents` (loading
// this module applies them) and says why. The ranges themselves are partitioning.js; the change
// log that writes and deletes feed is changelog.js.
"use strict";

const { fromPackage } = require("./vendor");
const { Memo } = require("./memo");
const { keyObject, logOf } = require("./changelog");
const { MAX_EPK, PartitionMap, canonicalKey, definitionOf, keyValues } = require("./partitioning");

const Documents = fromPackage("@vercel/cosmosdb-server/lib/account/documents").default;
const Items = fromPackage("@vercel/cosmosdb-server/lib/account/items").default;

/// --partitions: the ranges of a container created without provisioned throughput.
const defaults = { partitions: 1 };

// ---------------------------------------------------------------------------------------------
// Fix 10 — document identity. The package keys a document by its id and the value of the
// first partition key path only, and falls back to the id when that value is falsy: documents of
// a hierarchical key (MultiHash) that differ only in their 2nd or 3rd value overwrote each other,
// and so did keys 0, "", false and null. A document's partition is now all its key values
// (`canonicalKey`), and the handlers pass the request's key in the same form (addressing.js).
// ---------------------------------------------------------------------------------------------
function definitionOfItems(items) {
  if (!items._definition) items._definition = definitionOf(items._parent.read());
  return items._definition;
}

Documents.prototype._getPartition = function partitionOf(data) {
  return canonicalKey(keyValues(definitionOfItems(this), data));
};

/// The ranges of a container (created with the container, or on first use with the default).
function partitionsOf(items) {
  if (!items._partitions) items._partitions = new PartitionMap(definitionOfItems(items), defaults.partitions);
  return items._partitions;
}

// ---------------------------------------------------------------------------------------------
// Fix 2 — change feed and ranges. The package answers one page, then 304 forever. Every write now
// finds the document's range by its effective partition key (EPK) and stamps the range's next
// sequence number (the LSN of the real service), kept beside the item rather than in it so that
// stored documents stay exactly as written. The feeds (feeds.js) read documents by that LSN.
// ---------------------------------------------------------------------------------------------

/// A write or delete takes the next LSN of the range its document lies in.
const takeLsn = (map, epk) => { const range = map.rangeOf(epk); range.lsn += 1; return range.lsn; };

/// The change log's entry for a write or delete (changelog.js): its LSN, when it happened.
function logChange(items, epk, lsn, change) {
  const log = logOf(items, items._parent.read());
  if (log) log.append({ lsn, epk, crts: Date.now() / 1000, ...change });
}

const originalSet = Items.prototype._set;
Documents.prototype._set = function setWithLsn(data) {
  const stored = originalSet.call(this, data);
  const map = partitionsOf(this);
  const epk = map.epkOf(keyValues(map.definition, stored));
  const lsn = takeLsn(map, epk);
  if (!this._meta) this._meta = new Map();
  // A replace keeps the document's _rid (the package replaces by a delete and a set), so a known
  // _rid is a replace, whose previous version's LSN the all-versions feed reports.
  const previous = this._meta.get(stored._rid);
  // Deleted first so that the map's order is write order: within a range, that is LSN order,
  // which lets a change feed read walk it instead of sorting the range on every read.
  this._meta.delete(stored._rid);
  this._meta.set(stored._rid, { epk, lsn });
  logChange(this, epk, lsn, { operationType: previous ? "replace" : "create", previousLsn: previous ? previous.lsn : 0, document: stored });
  return stored;
};

const originalDelete = Items.prototype.delete;
Documents.prototype.delete = function deleteWithLsn(idOrRid, partition) {
  const existing = this._item("/id", idOrRid, partition).read();
  originalDelete.call(this, idOrRid, partition);
  if (this._replacing) return;
  if (existing && this._meta) {
    // A delete takes the range's next LSN, as on the service (only the all-versions feed shows it).
    const known = this._meta.get(existing._rid);
    const map = partitionsOf(this);
    const values = keyValues(map.definition, existing);
    const epk = known ? known.epk : map.epkOf(values);
    const lsn = takeLsn(map, epk);
    this._meta.delete(existing._rid);
    logChange(this, epk, lsn, { operationType: "delete", previousLsn: known ? known.lsn : 0, document: existing, key: keyObject(map.definition, values), timeToLiveExpired: !!this._expiring });
  }
  forgetOrder(this);
};

// ---------------------------------------------------------------------------------------------
// Fix 1b — query cost, continued (Fix 1 is in queries.js). Every query sorts its input by `_rid`
// with a generic comparator; the package hands it documents in Map order (a replace moves a
// document to the end), so each page paid a full O(N log N) sort (~80 ms at 20,000 documents). A
// document's `_rid` never changes, so the rid order (of the container, and of each range) is
// cached until a document is created or deleted or a range splits (a replace is a delete + set
// inside the package: not a membership change), and the engine's sort of a sorted input is a
// linear pass.
// ---------------------------------------------------------------------------------------------
const originalCreate = Items.prototype.create;
Documents.prototype.create = function createAndForgetOrder(data) {
  const stored = originalCreate.call(this, data);
  forgetOrder(this);
  return stored;
};

const originalReplace = Items.prototype.replace;
Documents.prototype.replace = function replaceKeepingOrder(data, original) {
  this._replacing = true;
  try { return originalReplace.call(this, data, original); } finally { this._replacing = false; }
};

function forgetOrder(items) {
  items._ridOrder = null;
  items._windowOrder = null;
}

function ridOrder(items) {
  if (!items._ridOrder) items._ridOrder = [...items._data.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return items._ridOrder;
}

/// The sorted `_rid`s of the documents whose EPK lies in [min, max).
function windowOrder(items, min, max) {
  const all = ridOrder(items);
  if (min === "" && max === MAX_EPK) return all;
  if (!items._windowOrder) items._windowOrder = new Memo(64);
  return items._windowOrder.get(`${min}|${max}`, () => {
    const meta = items._meta || new Map();
    return all.filter(rid => { const m = meta.get(rid); return m && m.epk >= min && m.epk < max; });
  });
}

module.exports = { defaults, definitionOfItems, forgetOrder, partitionsOf, windowOrder };
