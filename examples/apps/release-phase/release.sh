#!/usr/bin/env bash
# Runs in a one-off dyno before each release goes live; a non-zero exit stops the release.
set -euo pipefail
echo "release phase: migrating (pretend) at $(date -u +%FT%TZ)"
if [ "${FAIL_RELEASE:-}" = "1" ]; then
  echo "release phase: FAIL_RELEASE=1, failing on purpose" >&2
  exit 1
fi
echo "migrated" > release-done.txt
