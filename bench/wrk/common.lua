-- Shared by the workload scripts in bench/wrk: thread numbering, the harness's inputs and the first-response check.
-- Each script loads it with dofile from its own directory. bench/run.sh wrk sets the environment:
--   GATEHOUSE_WRK_THREADS, GATEHOUSE_WRK_CONNECTIONS  wrk's -t and -c (so a thread knows its share of connections)
--   GATEHOUSE_WRK_FILES                               the harness's temp work dir (bearer.txt, refresh.txt)
--   GATEHOUSE_WRK_RUN                                 a number unique to this wrk run (new users stay new)
--   GATEHOUSE_API_KEY, GATEHOUSE_SERVER_KEY, GATEHOUSE_ADMIN_TOKEN
--   GATEHOUSE_MTLS_SERVER_KEY                         the mTLS mint only (with the client-certificate shim, mint-mtls.lua)
--   GATEHOUSE_WRK_CHECK                               set for the warm-up run: print each thread's first response
--   GATEHOUSE_WRK_SECOND_NODE                         host:port of a second Gatehouse on the same database (BENCH_NODES=2)
local common = {}

-- setup() runs in wrk's main Lua state once per thread, before that thread's init(): it numbers the threads
-- and keeps them, so done() can read what each thread counted. With a second node, every other thread (and so half
-- the connections) sends its requests there instead of to the address on wrk's command line.
local threads = {}
local second_node = os.getenv("GATEHOUSE_WRK_SECOND_NODE")
function setup(thread)
  thread:set("id", #threads)
  if second_node and second_node ~= "" and #threads % 2 == 1 then
    local host, port = second_node:match("^(.+):(%d+)$")
    thread.addr = assert(wrk.lookup(assert(host, second_node), port)[1], "no address for " .. second_node)
  end
  threads[#threads + 1] = thread
end

function common.env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set (bench/run.sh wrk sets it)")
  end
  return value
end

-- This thread's number (0-based), the thread count and this thread's connections (wrk gives each -c/-t).
function common.thread()
  local count = tonumber(common.env("GATEHOUSE_WRK_THREADS"))
  return wrk.thread:get("id"), count, math.floor(tonumber(common.env("GATEHOUSE_WRK_CONNECTIONS")) / count)
end

-- The worker numbers this thread stands for, as the C# generator's workers 0..connections-1 split between
-- the threads: thread t takes t, t + threads, t + 2 * threads, …
function common.workers()
  local id, count, mine = common.thread()
  local workers = {}
  for k = 0, mine - 1 do
    workers[#workers + 1] = id + k * count
  end
  return workers
end

-- Line w + 1 of a file the harness wrote (one per worker), for each worker of this thread.
function common.lines(name)
  local all = {}
  for line in io.lines(common.env("GATEHOUSE_WRK_FILES") .. "/" .. name) do
    all[#all + 1] = line
  end
  local mine = {}
  for _, w in ipairs(common.workers()) do
    mine[#mine + 1] = assert(all[w + 1], name .. " has no line for worker " .. w)
  end
  return mine
end

-- The script's response() (or none), wrapped in the warm-up run so that each thread prints its first response
-- ("first response: <status> <body>"), which the harness checks is 2xx before it times anything.
function common.checked(response)
  if not os.getenv("GATEHOUSE_WRK_CHECK") then
    return response
  end
  local seen = false
  return function(status, headers, body)
    if not seen then
      seen = true
      io.write(string.format("first response: %d %s\n", status, ((body or ""):gsub("%s+", " ")):sub(1, 160)))
    end
    if response then
      response(status, headers, body)
    end
  end
end

-- In done(): the sum over the threads of a number each kept with wrk.thread:set(name, …).
function common.sum(name)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (tonumber(thread:get(name)) or 0)
  end
  return total
end

-- A request with a JSON body.
function common.post(path, headers, body)
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", path, headers, body)
end

return common
