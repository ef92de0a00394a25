-- Bearer validation while other sessions refresh: nine requests in ten are GET /api/v3/users/me with the access
-- token of a session the harness opened for each worker (bearer.txt, as bearer.lua), the tenth is a rotating
-- refresh of another session (refresh.txt, kept in a pool as refresh.lua does), so the bearer checks run while
-- sessions change all the time, as in a real app. Each refresh commits a change to the sessions table: a cache
-- that counted writes per table would read every kept session again after each one (docs/benchmarks.md, change 46).
-- With the pool empty (every chain in flight) the tenth request is a bearer check too.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local key, bearers, pool, n, verifying = nil, {}, nil, 0, nil

function init(args)
  key = common.env("GATEHOUSE_API_KEY")
  for _, token in ipairs(common.lines("bearer.txt")) do
    bearers[#bearers + 1] = wrk.format("GET", "/api/v3/users/me", { ["Authorization"] = "Bearer " .. token })
  end
  pool = common.lines("refresh.txt")
  -- wrk's check call of the first thread's request() is never sent: it must not take a refresh token.
  verifying = common.thread() == 0
end

function request()
  n = n + 1
  if verifying then
    verifying = false
    return bearers[1]
  end
  if n % 10 == 0 and #pool > 0 then
    local token = table.remove(pool)
    return common.post("/api/v4/sessions/refresh", { ["x-api-key"] = key }, '{"refreshToken":"' .. token .. '"}')
  end
  return bearers[n % #bearers + 1]
end

response = common.checked(function(status, headers, body)
  if status >= 200 and status < 300 then
    local token = body:match('"refreshToken"%s*:%s*"([^"]+)"')
    if token then
      pool[#pool + 1] = token
    end
  end
end)
