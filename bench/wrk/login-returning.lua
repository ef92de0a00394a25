-- Session creation, returning users: POST /api/v5/sessions with x-api-key for returning-<worker> on
-- returning-device-<worker>, the same users again and again.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local requests, n = {}, 0

function init(args)
  local key = common.env("GATEHOUSE_API_KEY")
  for _, w in ipairs(common.workers()) do
    requests[#requests + 1] = common.post("/api/v5/sessions", { ["x-api-key"] = key },
      '{"userId":"returning-' .. w .. '","deviceId":"returning-device-' .. w .. '"}')
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

response = common.checked(nil)
