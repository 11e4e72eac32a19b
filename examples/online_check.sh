#!/usr/bin/env bash
# Online check from the publisher's servers: the service also confirms the device session is
# still signed in and the reader still has the features, so a sign-out, a cancellation or a
# refund takes effect at once, and that the token came with its session (cnf.sth).
# Usage: PAYWALL_PUBLISHER_API_KEY=<key> examples/online_check.sh <token> <session> [service url]
set -euo pipefail
curl -s -X POST "${3:-http://127.0.0.1:8000}/api/v1/entitlements/verify" \
  -H "Authorization: Bearer ${PAYWALL_PUBLISHER_API_KEY:?set PAYWALL_PUBLISHER_API_KEY}" \
  -H 'Content-Type: application/json' -d "{\"token\": \"$1\", \"session\": \"$2\"}"
echo
