#!/usr/bin/env bash
# Builds Release and runs the load harness: Gatehouse and a bare ASP.NET Core baseline, each in its own process
# on 127.0.0.1, driven by the same closed-loop generator; prints one table with ratios to the baseline.
# Usage: bench/run.sh [seconds per run, default 10] [connections, default 1,64] [only workloads whose name contains this]
#        bench/run.sh scale [seconds per run]   (validation with 10,000 and 1,000,000 live sessions, memory, start time)
#        bench/run.sh wrk [seconds per run, default 8] [connections, default 64] [only workloads whose name contains this]
#                                               (the same workloads driven by wrk with bench/wrk/*.lua; installs wrk;
#                                               each workload's seconds cut into BENCH_WRK_SLICES slices, default 4,
#                                               taken in turn with the baseline's: B W, W B, B W, W B)
# BENCH_DATABASE=postgres runs Gatehouse on a throwaway local PostgreSQL (tests/postgres.sh, fsync on) instead of SQLite;
# BENCH_POSTGRES_OPTIONS adds settings to its connection string.
# BENCH_NODES=2 (PostgreSQL, wrk mode) measures each workload on one node and again split between two nodes on the same database.
# BENCH_GCDUMP=<file> (wrk tables) writes a dump of the server's live heap after the table (dotnet-gcdump; dotnet tool restore).
# BENCH_GATEHOUSE_ENV="NAME=VALUE NAME=VALUE" sets environment variables for the Gatehouse process only (not the baseline),
# e.g. a GC setting or a configuration key such as Logging__LogLevel__Default=Warning, to compare runs with and without it;
# BENCH_GATEHOUSE_LOG_LEVEL sets Gatehouse's own log category (default Warning: Information writes a line per security event).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ "${BENCH_DATABASE:-sqlite}" = postgres ]; then
  # shellcheck source=../tests/postgres.sh
  source tests/postgres.sh
  trap stop_postgres EXIT
  "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE gatehouse_bench"
  export GATEHOUSE_BENCH_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=gatehouse_bench${BENCH_POSTGRES_OPTIONS:+;$BENCH_POSTGRES_OPTIONS}"
fi
if [ "${1:-}" = wrk ]; then
  if ! command -v wrk >/dev/null || ! command -v gcc >/dev/null; then
    echo "Installing wrk and gcc"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk gcc libc6-dev >/dev/null
  fi
  # wrk presents no client certificate of its own: this shim, preloaded into wrk for the mTLS mint only, gives it one.
  shim_dir=$(mktemp -d)
  trap 'rm -rf "$shim_dir"; [ "${BENCH_DATABASE:-sqlite}" != postgres ] || stop_postgres' EXIT
  gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o "$shim_dir/client-cert.so" bench/wrk/client-cert.c -ldl
  export GATEHOUSE_WRK_CLIENT_CERT_SHIM="$shim_dir/client-cert.so"
fi
dotnet build bench/Gatehouse.Bench -c Release -v quiet -nologo
if [ "${1:-}" = scale ]; then
  dotnet run -c Release --no-build --project bench/Gatehouse.Bench -- scale "${2:-10}"; exit
fi
if [ "${1:-}" = wrk ]; then
  # Not exec: the traps must run when the bench ends.
  dotnet run -c Release --no-build --project bench/Gatehouse.Bench -- wrk "${2:-8}" "${3:-64}" "${4:-}"; exit
fi
# Not exec: the PostgreSQL trap must run when the bench ends.
dotnet run -c Release --no-build --project bench/Gatehouse.Bench -- "${1:-10}" "${2:-1,64}" "${3:-}"
