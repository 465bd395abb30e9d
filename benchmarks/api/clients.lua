-- wrk's script for run.py's 50 concurrent API clients: each connection asks for the apps
-- in turn (GET /apps/{app}), as a fleet of agents and dashboards does, with the operator's
-- key. run.py passes the key and a file with one app name a line in the environment, and
-- reads the figures `done` prints (a JSON line; latencies in microseconds).
--
--   SPRUCE_BENCH_KEY=... SPRUCE_BENCH_APPS=names.txt \
--     wrk -t2 -c50 -d10s -s benchmarks/api/clients.lua http://127.0.0.1:5000

local names = {}
for line in io.lines(os.getenv("SPRUCE_BENCH_APPS")) do
  names[#names + 1] = line
end

wrk.headers["Accept"] = "application/vnd.heroku+json; version=3"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SPRUCE_BENCH_KEY")

local counter = 0
local threads = {}

function setup(thread)
  thread:set("first", #threads * 7919)
  threads[#threads + 1] = thread
end

function init(args)
  counter = first or 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", "/apps/" .. names[(counter % #names) + 1])
end

-- No response() callback: with one, wrk hands every body to Lua, on the cores it measures.
-- summary.errors.status counts the answers of status 400 and above.
function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "status_errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
