-- Gatehouse pipeline only: GET /healthz (its middleware, routing and metrics, nothing else).
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/healthz"
response = common.checked(nil)
