// One bounded cache for the values this server derives again and again from the same input:
// compiled queries and their generated code (queries.js), effective partition keys
// (partitioning.js), the `_rid` order of a range (store.js). A paged scan or a bulk load repeats
// the same inputs on every request, so each is computed once; past `limit` entries the oldest
// goes, so memory stays flat however many distinct inputs a long run sees.
"use strict";

class Memo {
  constructor(limit) {
    this.limit = limit;
    this.values = new Map();
  }

  /// The value for `key`, made by `make()` the first time.
  get(key, make) {
    let value = this.values.get(key);
    if (value === undefined) {
      value = make();
      if (this.values.size >= this.limit) this.values.delete(this.values.keys().next().value);
      this.values.set(key, value);
    }
    return value;
  }
}

module.exports = { Memo };
