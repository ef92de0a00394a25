-- Secure logout alone: DELETE /api/v4/sessions with the access token of a session the harness opened just before
-- the run (logout.txt, one token per line, more than the run can end; each on a device of its own). Thread t of n
-- takes lines t+1, t+1+n, …; no token is sent twice. Should the run end them all, the script sends a token that
-- cannot be valid, so the shortfall shows as non-2xx responses instead of hiding. The login+logout pairs of
-- logout.lua are what an app does; this row is the logout's own rate, the one the speed issue's target names.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local pool, taken = {}, 0

function init(args)
  local id, count = common.thread()
  local line = 0
  for token in io.lines(common.env("GATEHOUSE_WRK_FILES") .. "/logout.txt") do
    if line % count == id then
      pool[#pool + 1] = token
    end
    line = line + 1
  end
end

function request()
  taken = taken + 1
  return wrk.format("DELETE", "/api/v4/sessions", { ["Authorization"] = "Bearer " .. (pool[taken] or "exhausted") })
end

response = common.checked(nil)
