// The HTTP(S) server itself. The package's CLI answers every request with `connection: close`, so
// each SDK call paid a new TLS handshake (~600 operations/s); with keep-alive the same calls run
// about ten times faster. HTTPS uses the certificate the package ships (expired, no SAN: clients
// skip its validation, as they do for the emulator's).
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");
const { packageDir } = require("./vendor");

/// Listens on host:port (port 0: a free one; with portFallback, a free one when port is taken),
/// then calls onListening(actualPort), which returns the (req, res) handler. SIGTERM and SIGINT
/// close the server and end the process.
function listen({ host, port, ssl, portFallback }, onListening) {
  let handle = null;
  const onRequest = (req, res) => handle(req, res);
  const server = ssl
    ? https.createServer({
      cert: fs.readFileSync(path.join(packageDir, "cert.pem")),
      key: fs.readFileSync(path.join(packageDir, "key.pem")),
      keepAlive: true
    }, onRequest)
    : http.createServer({ keepAlive: true }, onRequest);
  // Idle connections stay open a minute; headersTimeout above it, so that Node does not time out
  // a request arriving on a connection just as it is being kept alive.
  server.keepAliveTimeout = 60000;
  server.headersTimeout = 65000;
  server.on("error", (err) => {
    if (err.code === "EADDRINUSE" && portFallback && port !== 0) { listen({ host, port: 0, ssl, portFallback }, onListening); return; }
    console.error(`cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => { handle = onListening(server.address().port); });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

module.exports = { listen };
