-- wrk script for booking-server: one request shape per mode, with data written by
-- `booking-load prepare --out DIR`.
--
--   wrk -t1 -c50 -d15s --latency -s scripts/wrk/booking.lua http://127.0.0.1:8080 -- MODE [FILE]
--
-- MODE     request                                       FILE
-- healthz  GET /healthz                                  -
-- enter    POST /token {} (a new user each time)         -
-- poll     GET /token, tokens in turn                    tokens.txt   (TOKEN)
-- listing  GET /concerts/{id}:{id} of a 50-seat date     listing.txt  (TOKEN PATH)
-- hold     POST /tickets, a distinct free seat each      holds.txt    (TOKEN SHOWTIME SEAT)
-- charge   POST /points 1000 + Idempotency-Key           tokens.txt   (TOKEN)
-- pay      POST /payments of a held ticket + key         pays.txt     (TOKEN TICKET)
-- map304   GET a seat map with If-None-Match: ETAG       listing.txt  ETAG (3rd argument)
-- since    GET a seat map ?since=VERSION                 listing.txt  VERSION (3rd argument)
-- hold4    POST /tickets seat_ids: 4 seats of one user   holds.txt    (4 lines of one user)
-- pay4     POST /payments ticket_ids: 4 held tickets     pays.txt     (4 lines of one user)
--
-- hold and pay never reuse a line (with several wrk threads, set BOOKING_WRK_THREADS to their
-- number so that each thread takes its own share of the lines): past the end of the file they send an unauthenticated
-- request (401), so running out of data shows up as errors, never as a repeated request.
-- At the end it prints "statuses: 200=N 409=N ..." over all threads.

local mode
local rows = {}
local n = 0
local run = tostring(math.floor(os.time() % 100000)) .. "-" .. tostring(math.random(1, 1e9))
statuses = {}

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local extra
function init(args)
  mode = args[1]
  extra = args[3]
  -- Modes that use each line once share the lines out: with BOOKING_WRK_THREADS=T (wrk -tT),
  -- thread k takes units k, k+T, k+2T, ... (a unit: one line, or four lines of one user).
  local once = mode == "hold" or mode == "pay" or mode == "hold4" or mode == "pay4"
  local share = tonumber(os.getenv("BOOKING_WRK_THREADS") or "1")
  if once and id >= share then
    error("hold and pay use each line once: run them with -t1, or -tT and BOOKING_WRK_THREADS=T")
  end
  local unit = (mode == "hold4" or mode == "pay4") and 4 or 1
  math.randomseed(os.time() + id)
  run = run .. "-" .. tostring(math.random(1, 1e9))
  if args[2] then
    local i = 0
    for line in io.lines(args[2]) do
      if not once or math.floor(i / unit) % share == id then
        local t = {}
        for w in line:gmatch("%S+") do t[#t + 1] = w end
        rows[#rows + 1] = t
      end
      i = i + 1
    end
  end
end

local function row(unique)
  n = n + 1
  if n <= #rows then return rows[n] end
  if unique then return nil end
  return rows[(n - 1) % #rows + 1]
end

local function headers(token, key)
  local h = { ["Content-Type"] = "application/json" }
  if token then h["Authorization"] = "Bearer " .. token end
  if key then h["Idempotency-Key"] = key .. "-" .. run .. "-" .. n end
  return h
end

function request()
  if mode == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif mode == "enter" then
    return wrk.format("POST", "/token", headers(), "{}")
  elseif mode == "poll" then
    return wrk.format("GET", "/token", headers(row(false)[1]))
  elseif mode == "listing" then
    return wrk.format("GET", rows[1][2], headers(rows[1][1]))
  elseif mode == "map304" then
    local h = headers(rows[1][1])
    h["If-None-Match"] = extra
    return wrk.format("GET", rows[1][2], h)
  elseif mode == "since" then
    return wrk.format("GET", rows[1][2] .. "?since=" .. extra, headers(rows[1][1]))
  elseif mode == "hold" then
    local r = row(true) or { nil, "0", "0" }
    local body = string.format('{"showtime_id":%s,"seat_id":%s}', r[2], r[3])
    return wrk.format("POST", "/tickets", headers(r[1]), body)
  elseif mode == "charge" then
    return wrk.format("POST", "/points", headers(row(false)[1], "c"), '{"amount":1000}')
  elseif mode == "pay" then
    local r = row(true) or { nil, "0" }
    return wrk.format("POST", "/payments", headers(r[1], "p"), '{"ticket_id":' .. r[2] .. '}')
  elseif mode == "hold4" or mode == "pay4" then
    -- Four consecutive lines belong to one user (prepare writes four per user).
    local first = row(true)
    local ids, token, showtime = {}, first and first[1], first and first[2]
    for k = 1, 4 do
      local r = (k == 1) and first or row(true)
      if r == nil or r[1] ~= token then token = nil end
      ids[#ids + 1] = r and r[#r] or "0"
    end
    if mode == "hold4" then
      local body = string.format('{"showtime_id":%s,"seat_ids":[%s]}', showtime or "0",
        table.concat(ids, ","))
      return wrk.format("POST", "/tickets", headers(token), body)
    end
    local body = '{"ticket_ids":[' .. table.concat(ids, ",") .. ']}'
    return wrk.format("POST", "/payments", headers(token, "p4"), body)
  end
  error("unknown mode " .. tostring(mode))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for status, c in pairs(t:get("statuses")) do
      counts[status] = (counts[status] or 0) + c
    end
  end
  local parts = {}
  for status, c in pairs(counts) do parts[#parts + 1] = status .. "=" .. c end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("p50_us: %d\np99_us: %d\n", latency:percentile(50), latency:percentile(99)))
end
