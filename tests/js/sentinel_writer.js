// A stock ioredis application that finds its primary through Sentinel and writes in a loop.
// No kvmaint code: `new Redis({ sentinels, name })` as ioredis documents it. Writes SET k:i i one after
// another; a write that rejects is counted as an error surfaced to the application and repeated 1 ms
// later. Prints `progress N` lines, and when stdin closes, one `result {json}` line.
"use strict";
const Redis = require("ioredis");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

function credentials(url) {
  return { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

async function main() {
  const [host, port] = arg("sentinel").split(":");
  const redis = new Redis({
    sentinels: [{ host, port: Number(port) }],
    name: arg("name"),
    sentinelPassword: arg("password", undefined),
    // The app's REDIS_URL carries the user and password of the primary's ACL user.
    ...(arg("url") ? credentials(new URL(arg("url"))) : {}),
    lazyConnect: false,
  });
  redis.on("error", () => {}); // connection errors are retried by ioredis; writes report their own
  let stop = false;
  let marked = null; // a line on stdin marks "the switchover starts now"; EOF stops
  process.stdin.on("data", () => { if (marked === null) marked = performance.now(); });
  process.stdin.on("end", () => { stop = true; });
  process.stdin.resume();

  let acked = 0, errors = 0, longest = 0, baseline = 0, last = performance.now(), nextReport = 0;
  const samples = [];
  while (!stop) {
    try {
      await redis.set(`k:${acked}`, String(acked));
    } catch (err) {
      errors += 1;
      if (samples.length < 20) samples.push(String(err));
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const now = performance.now();
    if (marked !== null && now >= marked) longest = Math.max(longest, now - last);
    else baseline = Math.max(baseline, now - last);
    last = now;
    acked += 1;
    if (now >= nextReport) {
      process.stdout.write(`progress ${acked}\n`);
      nextReport = now + 50;
    }
  }
  const info = await redis.info("server");
  const port_ = Number(/tcp_port:(\d+)/.exec(info)[1]);
  const role = (await redis.role())[0];
  const version = require("ioredis/package.json").version;
  process.stdout.write("result " + JSON.stringify({
    client: `ioredis ${version}`, retry: true, acked, errors, error_samples: samples,
    longest_pause_ms: Math.round(longest * 10) / 10, baseline_pause_ms: Math.round(baseline * 10) / 10,
    port: port_, role,
  }) + "\n");
  redis.disconnect();
}

main().catch((err) => { console.error(err); process.exit(1); });
