#!/usr/bin/env bash
# Profiles the server with perf while wrk drives one workload (SQLite, or BENCH_DATABASE=postgres): a 35 s run, of
# which 15 s are recorded from just after the timed run starts (not the warm-up, nor a preparation such as the logout
# alone's logins), with the runtime's perf map on so managed frames have names.
# Writes <prefix>.data, <prefix>.script (perf script) and <prefix>.run.log, and prints the run's row.
# Usage: bench/profile.sh <only the workload whose name contains this> <output prefix>
# Then read the stacks with bench/stacks.py: the frames with the most samples below them, or what one frame calls:
#   python3 bench/stacks.py <prefix>.script incl 60
#   python3 bench/stacks.py <prefix>.script under 'BulkInsert::InsertSqlite' 1
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:?workload filter}; out=${2:?output prefix}
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v perf >/dev/null; then
  echo "Installing perf"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf >/dev/null
fi
# W^X off for this run only, so that perf can name the JIT-compiled frames.
BENCH_WRK_SLICES=1 BENCH_GATEHOUSE_ENV="DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0" bench/run.sh wrk 35 64 "$filter" > "$out.run.log" 2>&1 &
bench=$!
until grep -F "$filter" "$out.run.log" 2>/dev/null | grep -v '^  Baseline' | grep -qF ': timed run'; do
  kill -0 $bench 2>/dev/null || { echo "the bench ended before the workload's timed run; see $out.run.log" >&2; exit 1; }
  sleep 1
done
# The line is printed when the timed run starts (after the warm-up and any preparation): a little into it, record.
sleep 5
$sudo perf record -F 999 -g -p "$(pgrep -f Gatehouse.Server.dll | head -1)" -o "$out.data" -- sleep 15 > /dev/null 2>&1
wait $bench
$sudo perf script -i "$out.data" > "$out.script" 2>/dev/null
grep '^| ' "$out.run.log" | grep -v '^| workload\|^|---'
