// The npm package @vercel/cosmosdb-server's own modules, loaded by path: its entry exports only
// its server factories, and the store, handlers, router and SQL engine that this server reuses or
// patches live under its lib/ folder. They are resolved from the package's folder so that its
// pinned dependencies (@zeit/cosmosdb-query, raw-body) are the ones it was built with.
"use strict";

const path = require("path");

const packageDir = path.dirname(require.resolve("@vercel/cosmosdb-server/package.json"));
const fromPackage = (m) => require(require.resolve(m, { paths: [packageDir] }));

module.exports = { packageDir, fromPackage };
