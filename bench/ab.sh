#!/usr/bin/env bash
# Alternating A/B of workloads between another commit (A) and this working tree (B), in wrk mode on SQLite (or
# BENCH_DATABASE=postgres): odd rounds run A then B, even rounds B then A, each run after its own baseline, so a drift
# of the machine during the rounds falls on both sides, and so does whatever the second run of a round pays (with one
# build on both sides, the second read 6 µs slower in one round of two, docs/benchmarks.md, change 70).
# Quote the per-round rows (requests/s, server CPU µs, KB allocated, ratio); a single pair is not a measurement on
# these noisy machines (docs/benchmarks.md, "Where a request's CPU goes").
# Usage: bench/ab.sh <commit A> <only workloads whose name contains this> [rounds, default 4] [seconds per run, default 8]
# A is checked out into a temporary worktree and built there; the worktree is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
commit=${1:?commit A}; filter=${2:?workload filter}; rounds=${3:-4}; seconds=${4:-8}
tree_a=$(mktemp -d)
trap 'git worktree remove --force "$tree_a" >/dev/null 2>&1 || rm -rf "$tree_a"' EXIT
git worktree add --detach -q "$tree_a" "$commit"
echo "A = $(git -C "$tree_a" log --oneline -1 | cut -c1-80)"
echo "B = this tree, $(git log --oneline -1 | cut -c1-70)$(git diff --quiet HEAD || echo ' + uncommitted changes')"
run() { (cd "$1" && bench/run.sh wrk "$seconds" 64 "$filter" 2>/dev/null) | grep '^| ' | grep -v '^| workload\|^|---\|^| Baseline'; }
for round in $(seq 1 "$rounds"); do
  if (( round % 2 )); then
    run "$tree_a" | sed "s/^/$round A /"
    run . | sed "s/^/$round B /"
  else
    run . | sed "s/^/$round B /"
    run "$tree_a" | sed "s/^/$round A /"
  fi
done
