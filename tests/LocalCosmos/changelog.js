// The all-versions-and-deletes (AVAD) change feed of the local Cosmos DB server.
//
// The latest-version feed (feeds.js, on the LSNs that store.js stamps) returns each changed
// document once, at its latest version: a delete leaves nothing to return. The AVAD feed returns
// every change in LSN order: each create and replace (an upsert or patch is one or the other) with
// the version it wrote, and each delete (an explicit one or a TTL expiry) with the deleted
// document's id and key. On the service it needs continuous backup and the account's opt-in, and
// a container without it answers 400; the emulator's opt-in is the container's
// `changeFeedPolicy.retentionDuration`, and that is the switch here too, so a test chooses per
// container whether a consumer gets the feed or the 400.
//
// A container with the feed on keeps a change log: entries in write order, each with its range's
// LSN (which a split's children inherit, so within one live range write order is LSN order, as in
// the latest-version feed) and its effective partition key. An entry holds references to the
// stored documents (the package replaces a document by a new object, never in place), so the log
// costs a few fields a change. It keeps the last MAX_ENTRIES changes of a container; what it
// drops (or what POST /_harness/expire drops at once, as the service's retention window would)
// is remembered by key and LSN only, so that a reader whose continuation is older than what is
// left gets the service's 400 instead of a feed with a hole in it.
//
// On the wire (what Microsoft.Azure.Cosmos 3.x sends and parses, ChangeFeedItem<T> /
// ChangeFeedMetadata): the request carries `A-IM: Full-Fidelity Feed` and
// `x-ms-cosmos-changefeed-wire-format-version`; it starts from now (`If-None-Match: *`) or from
// a continuation (an LSN); a start time or the beginning is refused (400), as the service does.
// Each item is { current, metadata: { lsn, crts, operationType, previousImageLSN?,
// timeToLiveExpired?, id?, partitionKey? }, previous? }; a delete has `current: {}`, the id and the
// key (property name -> value) in its metadata, and the deleted version as `previous` when it was
// explicit (none for a TTL expiry), as the emulator answers with previous images for deletes on.
"use strict";

const MAX_ENTRIES = 200000;

const ENABLE_MESSAGE = "Change Feed 'All Versions and Deletes' mode must be enabled.";

const EXPIRED_MESSAGE = "The continuation of the 'All Versions and Deletes' change feed is older than the container's change feed retention (changeFeedPolicy.retentionDuration): the changes since it are no longer kept.";

/// Whether a container's definition turns the feed on (the emulator's opt-in).
function fullFidelityEnabled(collectionData) {
  const policy = (collectionData || {}).changeFeedPolicy;
  return !!policy && Number(policy.retentionDuration) > 0;
}

class ChangeLog {
  constructor() {
    this.entries = [];
    this.base = 0; // absolute position of entries[0] (older ones were dropped)
    // Where each window's reader left off: "min|max|lsn" -> absolute position of the first entry
    // not yet read. Readers read on from their last ETag, so most reads start where one ended.
    this.resume = new Map();
  }

  append(entry) {
    this.entries.push(entry);
    if (this.entries.length > MAX_ENTRIES) this.drop(Math.floor(MAX_ENTRIES / 10));
  }

  /// Drops the oldest `count` entries (all of them by default: the retention window passed),
  /// keeping the highest dropped LSN of each key, for missed().
  drop(count = this.entries.length) {
    this.dropped = this.dropped || new Map();
    for (const entry of this.entries.splice(0, count)) {
      if ((this.dropped.get(entry.epk) || -1) < entry.lsn) this.dropped.set(entry.epk, entry.lsn);
    }
    this.base += count;
    this.resume.clear();
  }

  /// Whether a reader of the window [min, max) from the LSN `from` would miss dropped changes.
  missed(min, max, from) {
    if (!this.dropped) return false;
    for (const [epk, lsn] of this.dropped) if (epk >= min && epk < max && lsn > from) return true;
    return false;
  }

  get end() { return this.base + this.entries.length; }

  /// Up to `limit` entries of the window [min, max) with an LSN above `from`, in LSN order; with
  /// `matches`, only those it accepts (a read scoped to a partition key: not resumed, as rare).
  read(min, max, from, limit, matches) {
    const resumable = !matches;
    const start = resumable ? Math.max(this.resume.get(`${min}|${max}|${from}`) || this.base, this.base) : this.base;
    const found = [];
    let position = start;
    for (; position < this.end && found.length < limit; position += 1) {
      const entry = this.entries[position - this.base];
      if (entry.lsn <= from || entry.epk < min || entry.epk >= max || (matches && !matches(entry))) continue;
      found.push(entry);
    }
    if (resumable) {
      if (this.resume.size > 1024) this.resume.clear();
      const last = found.length ? found[found.length - 1].lsn : from;
      this.resume.set(`${min}|${max}|${last}`, position);
    }
    return found;
  }
}

/// The log of a container's documents (created when the feed is on at the time of a change).
function logOf(items, collectionData) {
  if (!items._changeLog) {
    if (!fullFidelityEnabled(collectionData)) return null;
    items._changeLog = new ChangeLog();
  }
  return items._changeLog;
}

/// The key of a document as the feed's metadata names it: each path's property, its value.
function keyObject(definition, values) {
  const key = {};
  definition.paths.forEach((p, i) => { if (values[i] !== undefined) key[p.slice(1)] = values[i]; });
  return key;
}

/// One item of the feed, as the SDK deserializes it.
function wireItem(entry) {
  const metadata = { lsn: entry.lsn, crts: entry.crts, operationType: entry.operationType };
  if (entry.previousLsn) metadata.previousImageLSN = entry.previousLsn;
  if (entry.operationType !== "delete") return { current: { ...entry.document, _lsn: entry.lsn }, metadata };
  metadata.id = entry.document.id;
  metadata.partitionKey = entry.key;
  if (entry.timeToLiveExpired) {
    metadata.timeToLiveExpired = true;
    return { current: {}, metadata };
  }
  return { current: {}, metadata, previous: entry.document };
}

module.exports = { ChangeLog, ENABLE_MESSAGE, EXPIRED_MESSAGE, fullFidelityEnabled, keyObject, logOf, wireItem };
