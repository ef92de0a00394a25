-- Refresh (rotating): POST /api/v4/sessions/refresh with x-api-key. The harness opens one session per worker
-- just before each wrk run (refresh.txt); each thread keeps its workers' refresh tokens in a pool: request()
-- takes one, response() puts back the rotated token from the answer. A connection has one request in flight
-- and wrk calls response() before that connection's next request(), so the pool never runs dry while the
-- answers are 2xx and no token is ever sent twice. A failed answer loses its chain; with the pool empty the
-- script sends a token that cannot be valid, so the loss shows as non-2xx responses instead of hiding.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local key, pool, verifying

function init(args)
  key = common.env("GATEHOUSE_API_KEY")
  pool = common.lines("refresh.txt")
  -- wrk calls the first thread's request() once before the run, only to check what it returns (never sent):
  -- that call must not take a token, or one connection of that thread would find the pool empty from the start.
  verifying = common.thread() == 0
end

function request()
  local token
  if verifying then
    verifying = false
    token = pool[#pool]
  else
    token = table.remove(pool) or "exhausted"
  end
  return common.post("/api/v4/sessions/refresh", { ["x-api-key"] = key }, '{"refreshToken":"' .. token .. '"}')
end

response = common.checked(function(status, headers, body)
  if status >= 200 and status < 300 then
    local token = body:match('"refreshToken"%s*:%s*"([^"]+)"')
    if token then
      pool[#pool + 1] = token
    end
  end
end)
