// Physical partitions of the local Cosmos DB server: effective partition keys (EPK), partition
// key ranges, their sequence numbers (LSN) and splits.
//
// A real container spreads its logical partitions over physical partitions ("partition key
// ranges"), each owning a slice [minInclusive, maxExclusive) of the EPK space, the hex string the
// SDKs compute from a document's partition key values. The SDKs route by the same strings, so the
// server must compute EPKs exactly as they do: it loads Microsoft's own implementation from the
// pinned npm package @azure/cosmos (its dist/commonjs/utils/hashing files are not exported from
// the package entry, so they are required by absolute path; package.json pins the version and an
// xunit test cross-checks every kind against the .NET SDK on a corpus of keys).

"use strict";

const path = require("path");
const { Memo } = require("./memo");

const cosmosDist = path.dirname(require.resolve("@azure/cosmos")); // …/@azure/cosmos/dist/commonjs
const fromCosmos = (file) => require(path.join(cosmosDist, file));
const { hashV2PartitionKey } = fromCosmos("utils/hashing/v2.js");
const { hashMultiHashPartitionKey } = fromCosmos("utils/hashing/multiHash.js");
const murmurHash = fromCosmos("utils/hashing/murmurHash.js").default;
const { BytePrefix } = fromCosmos("utils/hashing/encoding/prefix.js");
const { writeStringForBinaryEncoding } = fromCosmos("utils/hashing/encoding/string.js");
const { doubleToByteArrayBigInt } = fromCosmos("utils/hashing/encoding/number.js");
const { uint8ArrayToHex, hexStringToUint8Array, concatUint8Arrays } = fromCosmos("utils/uint8.js");

// Fix 14 — V1 number encoding. @azure/cosmos 4.10.1's writeNumberForBinaryEncodingBigInt drops
// the encoding's last byte when it is 00, which the .NET SDK (and the service) write: the number
// 0 (and 2, 131072, … whose double has 56 zero low bits) got another V1 EPK than the .NET SDK
// computes (05C1BF6DA115600580 instead of …58000; the cross-check test found it). So V1 is
// composed here from the package's own parts, with the number encoding written in full.
function encodeNumber(value) {
  const bits = BigInt.asUintN(64, BigInt("0x" + Buffer.from(new Float64Array([value]).buffer).reverse().toString("hex")));
  const mask = BigInt("0x8000000000000000");
  let payload = bits < mask ? bits ^ mask : BigInt.asUintN(64, ~bits + BigInt(1));
  const bytes = [0x05, Number(payload >> BigInt(56))];
  payload = BigInt.asUintN(64, payload << BigInt(8));
  let byte = 0;
  let first = true;
  do {
    if (!first) bytes.push(byte);
    first = false;
    byte = Number(payload >> BigInt(56)) | 0x01;
    payload = BigInt.asUintN(64, payload << BigInt(7));
  } while (payload !== BigInt(0));
  bytes.push(byte & 0xfe);
  return Uint8Array.from(bytes);
}

const MAX_V1_STRING = 100;
function v1Bytes(key) {
  switch (typeof key) {
    case "string": return { hashed: concatUint8Arrays([hexStringToUint8Array(BytePrefix.String), new TextEncoder().encode(key.substring(0, MAX_V1_STRING)), hexStringToUint8Array(BytePrefix.Undefined)]), encoded: writeStringForBinaryEncoding(key.substring(0, MAX_V1_STRING)) };
    case "number": return { hashed: concatUint8Arrays([hexStringToUint8Array(BytePrefix.Number), doubleToByteArrayBigInt(key)]), encoded: encodeNumber(key) };
    case "boolean": { const b = hexStringToUint8Array(key ? BytePrefix.True : BytePrefix.False); return { hashed: b, encoded: b }; }
    default: { const b = hexStringToUint8Array(key === null ? BytePrefix.Null : BytePrefix.Undefined); return { hashed: b, encoded: b }; }
  }
}

/// V1: the 32-bit murmur hash of the typed key, number-encoded, then the key itself encoded.
function hashV1PartitionKey([key]) {
  const { hashed, encoded } = v1Bytes(key);
  return uint8ArrayToHex(concatUint8Arrays([encodeNumber(murmurHash.x86.hash32(hashed)), encoded])).toUpperCase();
}

const MIN_EPK = "";
const MAX_EPK = "FF";

/// The meaning of a container's partition key definition: paths, kind and hash version. A
/// container created without a `version` (what the .NET SDK sends) is V1; MultiHash is always V2.
function definitionOf(collectionData) {
  const pk = (collectionData || {}).partitionKey || {};
  const paths = Array.isArray(pk.paths) && pk.paths.length ? pk.paths : ["/id"];
  const kind = pk.kind || "Hash";
  const version = kind === "MultiHash" ? 2 : (pk.version === 2 ? 2 : 1);
  return { paths, kind, version };
}

/// Two definitions mean the same (property order, a default `kind` or `version` left out).
function sameDefinition(a, b) {
  const x = definitionOf({ partitionKey: a });
  const y = definitionOf({ partitionKey: b });
  return x.kind === y.kind && x.version === y.version &&
    x.paths.length === y.paths.length && x.paths.every((p, i) => p === y.paths[i]);
}

function valueAt(doc, segments) {
  let current = doc;
  for (const s of segments) {
    if (current === null || typeof current !== "object") return undefined;
    current = current[s];
  }
  return current;
}

const segmentsOf = (definition) => definition.paths.map(p => p.slice(1).split("/"));

/// The document's partition key values, one per path (undefined where the document lacks it).
function keyValues(definition, doc) {
  return segmentsOf(definition).map(s => valueAt(doc, s));
}

/// The identity of a logical partition: the key values as JSON, a missing value as {} (what the
/// SDK sends for PartitionKey.None). Two documents share a partition only if every value matches.
function canonicalKey(values) {
  return JSON.stringify(values.map(v => (v === undefined || (v !== null && typeof v === "object") ? {} : v)));
}

/// The partition key of a request (the x-ms-documentdb-partitionkey header) as values, or
/// undefined when the request is not scoped to one. The SDK sends `[{}]` for PartitionKey.None,
/// and `[]` (or no header) for a cross-partition request.
function requestKeyValues(req) {
  const header = req.headers["x-ms-documentdb-partitionkey"];
  if (!header) return undefined;
  let parsed;
  try { parsed = JSON.parse(Array.isArray(header) ? header[0] : header); } catch (e) { return undefined; }
  if (!Array.isArray(parsed) || parsed.length === 0) return undefined;
  return parsed.map(v => (v !== null && typeof v === "object" ? undefined : v));
}

/// The effective partition key of key values (a prefix of a hierarchical key hashes its prefix).
function effectivePartitionKey(definition, values) {
  const hashable = values.map(v => (v === undefined ? {} : v));
  if (definition.kind === "MultiHash") return hashMultiHashPartitionKey(hashable);
  return definition.version === 2 ? hashV2PartitionKey(hashable.slice(0, 1)) : hashV1PartitionKey(hashable.slice(0, 1));
}

/// Whether a document's key values match a (possibly prefix) key of a request.
function matchesKey(docValues, key) {
  return key.every((v, i) => (v === undefined ? docValues[i] === undefined : docValues[i] === v));
}

/// Boundaries that cut the hash space into `count` equal slices, as the service lays out a new
/// container. V1 EPKs start with the hash (a uint32) in the binary number encoding, so the
/// boundaries are encoded hashes; V2 and MultiHash EPKs start with 128 bits whose top two bits are
/// zero, so the boundaries are 32 hex digits below 40000…
function initialBoundaries(definition, count) {
  const boundaries = [];
  for (let i = 1; i < count; i += 1) {
    if (definition.kind === "Hash" && definition.version === 1) {
      const hash = Math.floor((i * 4294967296) / count);
      boundaries.push(uint8ArrayToHex(encodeNumber(hash)).toUpperCase());
    } else {
      const value = (BigInt(i) * (BigInt(0x40) << BigInt(120))) / BigInt(count);
      boundaries.push(value.toString(16).padStart(32, "0").toUpperCase());
    }
  }
  return boundaries;
}

/// A point strictly between two EPK strings (used to split a range that holds fewer than two
/// distinct keys): both read as hex fractions, averaged with two extra digits of precision.
function midpoint(min, max) {
  const width = Math.max(min.length, max.length) + 2;
  const a = BigInt("0x0" + min.padEnd(width, "0"));
  const b = BigInt("0x0" + max.padEnd(width, "0"));
  return ((a + b) / BigInt(2)).toString(16).padStart(width, "0").toUpperCase();
}

/// The ranges of one container: the live ones in EPK order, every one ever created (the
/// /pkranges change feed), and each range's LSN (the sequence number of its latest write).
class PartitionMap {
  constructor(definition, count) {
    this.definition = definition;
    this.history = [];
    this.live = [];
    this.nextId = 0;
    this.epkCache = new Memo(100000);
    const bounds = [MIN_EPK, ...initialBoundaries(definition, Math.max(1, count)), MAX_EPK];
    for (let i = 0; i + 1 < bounds.length; i += 1) this.live.push(this._newRange(bounds[i], bounds[i + 1], [], 0));
  }

  _newRange(minInclusive, maxExclusive, parents, lsn) {
    const range = { id: String(this.nextId), minInclusive, maxExclusive, parents, lsn };
    this.nextId += 1;
    this.history.push(range);
    return range;
  }

  /// The /pkranges ETag: how many ranges were ever created (it changes with every split).
  get version() { return this.history.length; }

  epkOf(values) {
    return this.epkCache.get(canonicalKey(values), () => effectivePartitionKey(this.definition, values));
  }

  rangeById(id) { return this.live.find(r => r.id === id); }

  wasEverCreated(id) { return this.history.some(r => r.id === id); }

  rangeOf(epk) {
    let lo = 0;
    let hi = this.live.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.live[mid].minInclusive <= epk) lo = mid; else hi = mid - 1;
    }
    return this.live[lo];
  }

  /// Replaces a live range by two children cut at `boundary`; they inherit its LSN, so the
  /// parent's change feed continuation (an LSN) is valid on both.
  split(range, boundary) {
    if (!(boundary > range.minInclusive && boundary < range.maxExclusive)) throw new Error(`split point ${boundary} is outside range ${range.id}`);
    const left = this._newRange(range.minInclusive, boundary, [range.id], range.lsn);
    const right = this._newRange(boundary, range.maxExclusive, [range.id], range.lsn);
    const at = this.live.indexOf(range);
    this.live.splice(at, 1, left, right);
    return [left, right];
  }

  /// The split point that halves the documents of a range (their EPKs, sorted): the median
  /// distinct EPK, so that no logical partition is cut; the middle of the range when it holds
  /// fewer than two distinct keys.
  splitPoint(range, epks) {
    const distinct = [...new Set(epks)].filter(e => e >= range.minInclusive && e < range.maxExclusive).sort();
    if (distinct.length >= 2) return distinct[Math.floor(distinct.length / 2)];
    return midpoint(range.minInclusive, range.maxExclusive);
  }

  /// What /pkranges answers for a range (ids are strings, as the service's are).
  static describe(range, collectionData) {
    return {
      id: range.id,
      minInclusive: range.minInclusive,
      maxExclusive: range.maxExclusive,
      ridPrefix: Number(range.id),
      throughputFraction: 1,
      status: "online",
      parents: range.parents,
      _rid: `${collectionData._rid}${range.id}`,
      _self: `${collectionData._self}pkranges/${range.id}/`,
      _etag: `"${range.id}"`,
      _ts: collectionData._ts
    };
  }
}

module.exports = {
  MIN_EPK,
  MAX_EPK,
  PartitionMap,
  canonicalKey,
  definitionOf,
  effectivePartitionKey,
  keyValues,
  matchesKey,
  requestKeyValues,
  sameDefinition,
  valueAt
};
