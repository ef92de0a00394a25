-- Secure logout, each call a fresh session. Each connection alternates a login (POST /api/v5/sessions) and the
-- logout of a session a login opened (DELETE /api/v4/sessions with its access token): response() keeps the
-- access token of each login, the connection's next request() logs one out. The logins cycle over returning
-- users leaver-<thread>-<k>, each login on a device of its own: wrk does not say which connection an answer
-- came on, so the C# generator's one device per worker cannot be kept, and two logins on one device would
-- end each other's sessions. wrk counts both kinds and its latency figures cover both; the script counts the
-- logouts answered 2xx per thread and done() prints "logouts: <n>", which the harness turns into completed
-- login+logout pairs per second. A failed login or logout is in wrk's non-2xx count; a failed login leaves no
-- token, so the connection logs in again.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local key, users, devices, tokens, n = nil, {}, nil, {}, 0
local logouts = 0

function init(args)
  key = common.env("GATEHOUSE_API_KEY")
  local id = common.thread()
  for k, _ in ipairs(common.workers()) do
    users[#users + 1] = '{"userId":"leaver-' .. id .. "-" .. k .. '","deviceId":"leaver-device-'
  end
  devices = common.env("GATEHOUSE_WRK_RUN") .. "-" .. id .. "-"
end

function request()
  local token = table.remove(tokens, 1)
  if token then
    return wrk.format("DELETE", "/api/v4/sessions", { ["Authorization"] = "Bearer " .. token })
  end
  n = n + 1
  return common.post("/api/v5/sessions", { ["x-api-key"] = key }, users[n % #users + 1] .. devices .. n .. '"}')
end

response = common.checked(function(status, headers, body)
  local token = body:match('"accessToken"%s*:%s*"([^"]+)"')
  if token then
    tokens[#tokens + 1] = token
  elseif status >= 200 and status < 300 and body:find('"success"%s*:%s*true') then
    -- A logout's answer ({"success":true}); a failed answer of either kind is in wrk's non-2xx count.
    logouts = logouts + 1
    wrk.thread:set("logouts", logouts)
  end
end)

function done(summary, latency, requests)
  io.write(string.format("logouts: %d\n", common.sum("logouts")))
end
