-- Admin API, one user: GET /api/v4/admin/users/reader-<worker> with x-admin-token.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local requests, n = {}, 0

function init(args)
  local token = common.env("GATEHOUSE_ADMIN_TOKEN")
  for _, w in ipairs(common.workers()) do
    requests[#requests + 1] = wrk.format("GET", "/api/v4/admin/users/reader-" .. w, { ["x-admin-token"] = token })
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

response = common.checked(nil)
