// Time to live, which @vercel/cosmosdb-server does not implement: a container whose definition
// has `defaultTtl` (-1 = on, items live as long as their own `ttl` says; N = N seconds unless the
// item says otherwise) loses each item once `_ts + ttl` has passed, as Cosmos DB's background
// expiry does. An item's `ttl` is ignored when the container has no `defaultTtl` (as on the
// service). Expired items are swept every quarter second, so they vanish within that much after
// their time; tests of retention (the undo journal's -JournalRetention) wait a little longer.
"use strict";

const SWEEP_MS = 250;

function effectiveTtl(item, defaultTtl) {
  if (typeof item.ttl === "number" && item.ttl !== 0) return item.ttl;
  return defaultTtl;
}

function sweep(account, nowSeconds) {
  for (const dbItem of account.databases._data.values()) {
    const database = account.database(dbItem.read().id);
    for (const collItem of database.collections._data.values()) {
      const data = collItem.read();
      if (!data || typeof data.defaultTtl !== "number" || data.defaultTtl === 0) continue;
      const documents = database.collection(data.id).documents;
      const expired = [];
      for (const entry of documents._data.values()) {
        const item = entry.read();
        const ttl = effectiveTtl(item, data.defaultTtl);
        if (ttl > 0 && item._ts + ttl <= nowSeconds) expired.push(item);
      }
      // Marked as expiries: the all-versions feed reports them with timeToLiveExpired (changelog.js).
      documents._expiring = true;
      try {
        for (const item of expired) documents.delete(item.id, documents._getPartition(item));
      } finally {
        documents._expiring = false;
      }
    }
  }
}

function startSweeper(account) {
  const timer = setInterval(() => {
    try { sweep(account, Date.now() / 1000); } catch (err) { console.error(`ttl sweep failed: ${err.message}`); }
  }, SWEEP_MS);
  timer.unref();
  return timer;
}

module.exports = { startSweeper, sweep, effectiveTtl };
