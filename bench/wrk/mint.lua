-- Auth-token mint (v3, server key): GET /api/v3/authentication/token?userId=user-<worker> with x-server-key,
-- each thread cycling over its workers' users (user-0 … user-<connections - 1> across the threads).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local requests, n = {}, 0

function init(args)
  -- mint-mtls.lua runs this script with the mTLS network's key.
  local key = common.env(MINT_SERVER_KEY_VARIABLE or "GATEHOUSE_SERVER_KEY")
  for _, w in ipairs(common.workers()) do
    requests[#requests + 1] = wrk.format("GET", "/api/v3/authentication/token?userId=user-" .. w, { ["x-server-key"] = key })
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

response = common.checked(nil)
