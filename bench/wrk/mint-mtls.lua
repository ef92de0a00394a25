-- Auth-token mint over mTLS: NOT measurable with wrk. wrk speaks HTTPS but has no way to present a client
-- certificate, and Gatehouse's mTLS networks refuse a mint without one. The harness prints the row as
-- "not measurable with wrk" and never runs this script; it is here so that every workload has its file and
-- the reason is stated where one would look for it. (A TLS-terminating proxy in front of wrk would put a
-- third process on the same two cores and measure the proxy too, which is what the wrk mode is meant to avoid.)
error("mTLS is not measurable with wrk: no client-certificate support")
