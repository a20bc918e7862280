// A minimal HTTP server for the platform test: answers with its pod name and counts requests
// in Prometheus text format, so the test can check routing, proxies and scraping.
"use strict";
const http = require("http");
let requests = 0;
http
  .createServer((req, res) => {
    requests += 1;
    if (req.url === "/metrics") {
      res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
      res.end(`# TYPE platform_test_requests_total counter\nplatform_test_requests_total ${requests}\n`);
      return;
    }
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`hello from ${process.env.POD_NAME || "unknown"}\n`);
  })
  .listen(8080);
