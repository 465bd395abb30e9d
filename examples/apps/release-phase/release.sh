#!/usr/bin/env bash
# Runs in a one-off dyno before each new release goes live (build, config change, rollback,
# add-on change). A non-zero exit means the release is not deployed: the previous one keeps
# running. Set the config var FAIL_RELEASE=1 to see that happen.
set -euo pipefail
echo "release phase: preparing version $(cat VERSION) at $(date -u +%FT%TZ)"
if [ "${FAIL_RELEASE:-}" = "1" ]; then
  echo "release phase: FAIL_RELEASE=1, failing on purpose" >&2
  exit 1
fi
echo "release phase: done"
