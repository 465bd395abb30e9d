#!/usr/bin/env bash
# A worker dyno: no web process, just a loop that logs.
n=0
while true; do
  n=$((n + 1))
  echo "worker tick $n"
  sleep "${TICK_SECONDS:-5}"
done
