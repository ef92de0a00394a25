-- Auth-token mint over mTLS: mint.lua's requests with the mTLS network's server key, sent over HTTPS by a wrk that
-- presents that network's client certificate. wrk has no option for one: bench/run.sh builds client-cert.c (beside
-- this script), which the harness preloads into wrk for this workload only. wrk keeps its connections open, so
-- each TLS handshake is paid once per connection and the figure is the mint's over reused TLS connections.
MINT_SERVER_KEY_VARIABLE = "GATEHOUSE_MTLS_SERVER_KEY"
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "mint.lua")
