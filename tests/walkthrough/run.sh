#!/usr/bin/env bash
# Runs the README's curl walkthrough exactly as written (every ```bash block between the walkthrough
# markers) against a freshly started server with an empty data folder. Fails if any command fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
export Gatehouse__DataDirectory="$work/data"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

awk '/<!-- walkthrough:start -->/ {on=1; next} /<!-- walkthrough:end -->/ {on=0} on' README.md \
  | awk '/^```bash$/ {code=1; next} /^```$/ {code=0; next} code' > "$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "walkthrough: no commands found in README.md"; exit 1; }

dotnet build src/Gatehouse.Server -v quiet -nologo >/dev/null
# The README's commands name port 5080, so a second ./test.sh on the same machine waits for this one's walkthrough
# instead of sending its commands to this server (and failing on what this one's first start printed).
exec 9>"${TMPDIR:-/tmp}/gatehouse-walkthrough-5080.lock"
flock 9
dotnet run --project src/Gatehouse.Server --no-build >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do
  kill -0 "$server_pid" 2>/dev/null || break
  curl -sf http://127.0.0.1:5080/readyz >/dev/null 2>&1 && break
  sleep 1
done
# Whatever answers on 5080 must be this server: another program holding the port would answer in its place.
kill -0 "$server_pid" 2>/dev/null || { echo "walkthrough: the server exited (is port 5080 taken?)"; cat "$work/server.log"; exit 1; }
curl -sf http://127.0.0.1:5080/readyz >/dev/null || { echo "walkthrough: server did not become ready"; cat "$work/server.log"; exit 1; }
# Standard output is a file here, not a terminal: the first start writes its secrets to a private file and says where.
grep -q "first-start-secrets.txt (readable by this user only)" "$work/server.log" || { echo "walkthrough: first start did not say where its secrets are"; cat "$work/server.log"; exit 1; }
grep -q "One-time password:" "$work/data/first-start-secrets.txt" || { echo "walkthrough: first start wrote no bootstrap admin"; exit 1; }
if grep -q "One-time password:" "$work/server.log"; then echo "walkthrough: the one-time password reached the log"; exit 1; fi

if bash -euo pipefail "$work/walkthrough.sh" >"$work/walkthrough.log" 2>&1; then
  echo "walkthrough: README commands all succeeded"
else
  echo "walkthrough: a README command failed"; cat "$work/walkthrough.log"; exit 1
fi
