-- Auth-token mint over mTLS: mint.lua's requests with the mTLS network's server key, sent over HTTPS by a wrk that
-- presents that network's client certificate. wrk has no option for one: bench/run.sh builds client-cert.c (beside
-- this script), which the harness preloads into wrk for this workload only. wrk keeps its connections open, so
-- each TLS handshake is paid once per connection and the figure is the mint's over reused TLS connections.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local requests, n = {}, 0

function init(args)
  local key = common.env("GATEHOUSE_MTLS_SERVER_KEY")
  for _, w in ipairs(common.workers()) do
    requests[#requests + 1] = wrk.format("GET", "/api/v3/authentication/token?userId=user-" .. w, { ["x-server-key"] = key })
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

response = common.checked(nil)
