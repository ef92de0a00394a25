-- Bearer validation: GET /api/v3/users/me with the access token of a session the harness opened for each worker
-- (bearer.txt, one per line), each thread cycling over its workers' tokens.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local requests, n = {}, 0

function init(args)
  for _, token in ipairs(common.lines("bearer.txt")) do
    requests[#requests + 1] = wrk.format("GET", "/api/v3/users/me", { ["Authorization"] = "Bearer " .. token })
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

response = common.checked(nil)
