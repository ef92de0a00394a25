#!/usr/bin/env bash
# Times retention's pass over a large database, once after each table's rows are written (each line a whole pass;
# bench/Gatehouse.Bench.Micro/RetentionPass.cs): on SQLite, or with BENCH_DATABASE=postgres on a throwaway local
# PostgreSQL (tests/postgres.sh). The optional argument multiplies every table's size (1: 550,000 users, 250,000
# sessions, 1.1 million refresh tokens; about 3 minutes).
# To compare two builds, run it in a worktree of each, one after the other (docs/benchmarks.md, change 92).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ "${BENCH_DATABASE:-sqlite}" = postgres ]; then
  # shellcheck source=../tests/postgres.sh
  source tests/postgres.sh
  trap stop_postgres EXIT
  "$pg_bin/psql" -q -h 127.0.0.1 -p "$pg_port" -U postgres -c "CREATE DATABASE gatehouse_bench"
  export GATEHOUSE_BENCH_POSTGRES="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=gatehouse_bench"
fi
dotnet run -c Release --project bench/Gatehouse.Bench.Micro -- retention "${1:-1}"
