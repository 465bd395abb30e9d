// A dependency-free HTTP server; Spruce's nodejs buildpack runs `npm start`.
const http = require("http");

const port = Number(process.env.PORT || 5000);
const host = process.env.HOST || "0.0.0.0";

http
  .createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end(`Hello from Node.js on Spruce! dyno=${process.env.DYNO || "?"}\n`);
  })
  .listen(port, host, () => console.log(`listening on ${host}:${port}`));
