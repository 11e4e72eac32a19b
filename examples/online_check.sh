#!/usr/bin/env bash
# Online check: the service also confirms the device session is still signed in and the reader
# still has the features, so a sign-out, a cancellation or a refund takes effect at once.
# Usage: examples/online_check.sh <token> [service url]
set -euo pipefail
curl -s -X POST "${2:-http://127.0.0.1:8000}/api/v1/entitlements/verify" \
  -H 'Content-Type: application/json' -d "{\"token\": \"$1\"}"
echo
