-- Session creation, new users (durable): POST /api/v5/sessions with x-api-key, each request a user never seen
-- before (new-<run>-<thread>-<n>; the run number keeps the timed run's users apart from the warm-up's).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local key, prefix, n

function init(args)
  key = common.env("GATEHOUSE_API_KEY")
  prefix = "new-" .. common.env("GATEHOUSE_WRK_RUN") .. "-" .. common.thread() .. "-"
  n = 0
end

function request()
  n = n + 1
  local user = prefix .. n
  return common.post("/api/v5/sessions", { ["x-api-key"] = key },
    '{"userId":"' .. user .. '","deviceId":"device-' .. user .. '"}')
end

response = common.checked(nil)
