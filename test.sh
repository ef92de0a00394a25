#!/usr/bin/env bash
# Runs every test Gatehouse has, on a fresh machine of the project's kind (Debian 12, .NET 10 SDK).
# Installs what the suite needs first; prints "N passed, N failed" as its last line (", N skipped" after it when
# any test was skipped).
set -euo pipefail
cd "$(dirname "$0")"

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
need_packages=()
command -v curl >/dev/null || need_packages+=(curl)
command -v jq >/dev/null || need_packages+=(jq)
command -v npm >/dev/null || need_packages+=(npm)
command -v openssl >/dev/null || need_packages+=(openssl)
# The console's browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
# promtool checks deploy/prometheus's alert rules. Debian ships it only in the Prometheus server's package, whose
# service must not run here: without its recommends (the node exporter, another service), and on a machine run by
# systemd the unit it starts is stopped and disabled (it would listen on :9090).
if ! command -v promtool >/dev/null; then
  echo "Installing prometheus (for promtool only)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -d /run/systemd/system ]; then $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true; fi
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results=$(mktemp -d)
# shellcheck source=tests/postgres.sh
source tests/postgres.sh
trap 'stop_postgres; rm -rf "$results"' EXIT

# The official social.plus web SDK, pinned by tests/websdk/package-lock.json, for the compatibility tests.
npm ci --prefix tests/websdk --no-audit --no-fund --loglevel=error
# The newest official SDK line (@amityco/ts-sdk-react-native 7.x), pinned by tests/rnsdk/package-lock.json, run in Node.
npm ci --prefix tests/rnsdk --no-audit --no-fund --loglevel=error
# jose (pinned by tests/jose/package-lock.json), as a customer's Node API verifies access tokens.
npm ci --prefix tests/jose --no-audit --no-fund --loglevel=error
# Redocly CLI (pinned by tests/openapi/package-lock.json), which lints the served OpenAPI document.
npm ci --prefix tests/openapi --no-audit --no-fund --loglevel=error
# The repository's local .NET tools (dotnet-tools.json): NSwag generates a client from the served OpenAPI document.
dotnet tool restore >/dev/null
dotnet build Gatehouse.slnx -c Release -warnaserror -v quiet -nologo

suite_status=0
dotnet test Gatehouse.slnx -c Release --no-build --logger "trx;LogFileName=suite.trx" --results-directory "$results" || suite_status=$?

walkthrough_status=0
bash tests/walkthrough/run.sh || walkthrough_status=$?

passed=0 failed=0 skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  passed=$((passed + $(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")))
  failed=$((failed + $(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters")))
  # A skipped test is in neither counter (nor in notExecuted): only its result says so.
  skipped=$((skipped + $({ grep -o '<UnitTestResult [^>]* outcome="NotExecuted"' "$trx" || true; } | wc -l)))
done
if [ "$walkthrough_status" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
if [ "$suite_status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi

if [ "$skipped" = 0 ]; then echo "$passed passed, $failed failed"; else echo "$passed passed, $failed failed, $skipped skipped"; fi
[ "$failed" = 0 ]
