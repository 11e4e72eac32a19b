-- wrk script: replay the requests listed in a file, one per line
--   method <TAB> path <TAB> header: value|header: value <TAB> body
-- cycling through them (each wrk thread starts at its own offset), count 2xx and other
-- statuses, and write a JSON summary to $BENCH_WRK_OUT when done.
-- Usage: wrk -s requests.lua <url> -- <requests file> [offset]

local threads = {}
local reqs = {}
local n = 0
local idx = 0

ok = 0        -- 2xx responses (read by done() through thread:get)
bad = 0       -- any other status
wrapped = 0   -- times the list was exhausted and started again

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  local offset = tonumber(args[2] or "0")
  for line in io.lines(path) do
    local method, p, hdrs, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      for h in string.gmatch(hdrs, "[^|]+") do
        local k, v = h:match("^([^:]+):%s*(.*)$")
        if k then headers[k] = v end
      end
      if body == "" then body = nil end
      n = n + 1
      reqs[n] = wrk.format(method, p, headers, body)
    end
  end
  if n == 0 then error("no requests in " .. path) end
  local nthreads = tonumber(args[3] or "1")
  idx = (offset + math.floor(n / nthreads) * (tid or 0)) % n
end

function request()
  idx = idx + 1
  if idx > n then
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local ok_total, bad_total, wrapped_total = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + (t:get("ok") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
    wrapped_total = wrapped_total + (t:get("wrapped") or 0)
  end
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_WRK_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "ok": %d, "bad": %d, "wrapped": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
    '"timeouts": %d, "lat_min_us": %d, "lat_mean_us": %.1f, "lat_max_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d}\n',
    summary.requests, summary.duration, ok_total, bad_total, wrapped_total,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
  out:close()
end
