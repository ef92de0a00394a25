-- Baseline: GET /baseline on the bare ASP.NET Core endpoint (bench/Gatehouse.Bench.Baseline), the same request
-- on every connection.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

wrk.method = "GET"
wrk.path = "/baseline"
response = common.checked(nil)
