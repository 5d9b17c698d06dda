// Splits on demand (POST /_harness/split) and the live ranges (GET /_harness/ranges): the service
// splits a range when it grows, and tests split one when they choose, to show that a paged query,
// a change feed or a running migration carries on across it. How a range splits (bounds, LSNs,
// parents) is partitioning.js; what the SDK then reads (410, /pkranges) is addressing.js and
// containers.js.
"use strict";

const { partitionsOf, forgetOrder } = require("./store");
const { collectionOf } = require("./addressing");
const { badRequest, notFound } = require("./wire");

function findCollection(account, database, container) {
  if (!database || !container) return null;
  return collectionOf(account, { dbId: database, collId: container });
}

/// The effective partition keys of each live range's documents, by range id.
function documentsPerRange(collection) {
  const map = partitionsOf(collection.documents);
  const meta = collection.documents._meta || new Map();
  const counts = new Map(map.live.map(r => [r.id, []]));
  for (const rid of collection.documents._data.keys()) {
    const m = meta.get(rid);
    if (m) counts.get(map.rangeOf(m.epk).id).push(m.epk);
  }
  return counts;
}

/// Splits the named range (the one holding the most documents when none is named) at the median
/// key of its documents: {"parent", "children": [ids]}.
function splitRange(account, body, res) {
  const collection = findCollection(account, body.database, body.container);
  if (!collection) return notFound(res);
  const map = partitionsOf(collection.documents);
  const epks = documentsPerRange(collection);
  let range;
  if (body.range !== undefined && body.range !== null && body.range !== "") {
    range = map.rangeById(String(body.range));
    if (!range) return badRequest(res, `range ${body.range} is not a live range of ${body.container}`);
  } else {
    range = map.live.reduce((best, r) => (epks.get(r.id).length > epks.get(best.id).length ? r : best), map.live[0]);
  }
  const children = map.split(range, map.splitPoint(range, epks.get(range.id)));
  // The cached rid order of each range (store.js, Fix 1b) is by the old bounds.
  forgetOrder(collection.documents);
  return { parent: range.id, children: children.map(c => c.id) };
}

/// POST /_harness/expire {"database", "container"}: the container's all-versions change log
/// forgets every change it holds, as the service does past the retention window; a reader whose
/// continuation is older then gets a 400 (changelog.js). {"dropped": N}.
function expireChangeLog(account, body, res) {
  const collection = findCollection(account, body.database, body.container);
  if (!collection) return notFound(res);
  const log = collection.documents._changeLog;
  const dropped = log ? log.entries.length : 0;
  if (log) log.drop();
  return { dropped };
}

/// The live ranges of ?database=…&container=…, with their bounds, parents, LSN and document count.
function describeRanges(account, url, res) {
  const query = new URL(url, "http://localhost").searchParams;
  const collection = findCollection(account, query.get("database"), query.get("container"));
  if (!collection) return notFound(res);
  const epks = documentsPerRange(collection);
  return {
    ranges: partitionsOf(collection.documents).live.map(r => ({
      id: r.id, minInclusive: r.minInclusive, maxExclusive: r.maxExclusive, parents: r.parents, lsn: r.lsn, documents: epks.get(r.id).length
    }))
  };
}

module.exports = { describeRanges, expireChangeLog, splitRange };
