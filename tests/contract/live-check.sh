#!/usr/bin/env bash
# Checks the running code against the contract: starts the six daemons
# of a build, drives traffic through every route and outcome
# (drive_shop.py), dumps the topics and dead-letter topics with kcat, and
# validates all of it with validate.py (events, Kafka keys and headers,
# dead letters, HTTP bodies).
#
# usage: tests/infra/with-infra INFRA_DIR tests/contract/live-check.sh [BUILD_DIR [OUT_DIR]]
#
#   BUILD_DIR  the CMake build holding services/<name>/<name>; not needed
#              when ORDER_SERVICE_BIN, PAYMENT_SERVICE_BIN,
#              INVENTORY_SERVICE_BIN, EMAIL_SERVICE_BIN,
#              ANALYTICS_SERVICE_BIN and SHIPPING_SERVICE_BIN name the
#              daemons (as ctest sets them)
#   OUT_DIR    where the recordings stay (http.jsonl, events.jsonl,
#              dead-letters.jsonl, the daemons' logs); default: a temporary
#              directory, removed on success
#
# Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (tests/infra/with-infra
# sets both), kcat, curl, and what validate.py needs. The run has names of
# its own (topics, consumer groups and database schemas prefixed with a
# run id, HTTP ports chosen by the kernel), so it can share a broker and a
# database with other tests; its schemas are dropped at the end when psql
# is there; its topics stay (the test broker is thrown away).
# Exit status: 0 all conforms, 1 something does not, 2 the run failed.
set -uo pipefail

PROG=live-check
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; exit 2; }

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
(($# <= 2)) || die "usage: $0 [BUILD_DIR [OUT_DIR]]"
BUILD=
if (($# >= 1)); then
  BUILD=$(cd "$1" && pwd) || die "no build directory $1"
fi
: "${KAFKA_BOOTSTRAP_SERVERS:?run under tests/infra/with-infra}"
: "${DATABASE_URL:?run under tests/infra/with-infra}"
command -v kcat >/dev/null || die "kcat not found (Debian package kcat)"
command -v curl >/dev/null || die "curl not found"
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

SERVICES=(order-service payment-service inventory-service email-service analytics-service
  shipping-service)
declare -A BIN=()
for s in "${SERVICES[@]}"; do
  var=${s^^}_BIN
  var=${var//-/_}
  BIN[$s]=${!var:-${BUILD:+$BUILD/services/$s/$s}}
  [[ -n ${BIN[$s]} ]] || die "name the build directory, or set $var"
  [[ -x ${BIN[$s]} ]] || die "${BIN[$s]} not built"
done

KEEP=0
if (($# == 2)); then
  OUT=$2
  mkdir -p "$OUT" || die "cannot create $OUT"
  KEEP=1
else
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/eventshop-contract.XXXXXX") || die "mktemp failed"
fi
RUN=contract$(date +%s)$$
B=$KAFKA_BOOTSTRAP_SERVERS
declare -A PID=() PORT=()

cleanup() {
  local s
  for s in "${!PID[@]}"; do kill -TERM "${PID[$s]}" 2>/dev/null; done
  for s in "${!PID[@]}"; do wait "${PID[$s]}" 2>/dev/null; done
  if command -v psql >/dev/null; then
    for s in "${SERVICES[@]}"; do
      psql -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS ${RUN}_${s//-/_} CASCADE" \
        >/dev/null 2>&1
    done
  fi
}
trap cleanup EXIT

# The topics first: a consumer does not create what it subscribes to.
TOPICS=("$RUN.orders" "$RUN.payments" "$RUN.inventory" "$RUN.notifications" "$RUN.shipments")
for s in "${SERVICES[@]}"; do TOPICS+=("$RUN.dlq.$s"); done
for t in "${TOPICS[@]}"; do
  kcat -b "$B" -X allow.auto.create.topics=true -L -t "$t" >/dev/null 2>&1
done

# Each daemon as its service's own role, in schemas of this run.
# shellcheck source=../infra/shops.sh
. "$HERE/../infra/shops.sh"
shop_role_schemas "$RUN" || die "could not make the schemas"
for s in "${SERVICES[@]}"; do
  env DATABASE_URL="$(shop_role_url "$s")" DATABASE_SCHEMA="${RUN}_${s//-/_}" CONSUMER_GROUP="$RUN.$s" \
    TOPIC_ORDERS="$RUN.orders" TOPIC_PAYMENTS="$RUN.payments" \
    TOPIC_INVENTORY="$RUN.inventory" TOPIC_NOTIFICATIONS="$RUN.notifications" \
    TOPIC_SHIPMENTS="$RUN.shipments" SHIPPING_DELAY_MS=200 \
    TOPIC_DLQ="$RUN.dlq.$s" HTTP_PORT=0 HTTP_BIND=127.0.0.1 MAILDIR="$OUT/maildir" \
    LOG_LEVEL=info "${BIN[$s]}" >"$OUT/$s.log" 2>&1 &
  PID[$s]=$!
done

# Each daemon logs the port the kernel gave it; then it must become ready.
for s in "${SERVICES[@]}"; do
  for _ in $(seq 1 240); do
    PORT[$s]=$(sed -n 's/.*serving HTTP on port \([0-9][0-9]*\).*/\1/p' "$OUT/$s.log" | head -1)
    if [[ -n ${PORT[$s]} ]] && curl -fs "http://127.0.0.1:${PORT[$s]}/readyz" >/dev/null; then
      break
    fi
    kill -0 "${PID[$s]}" 2>/dev/null || { tail -5 "$OUT/$s.log" >&2; die "$s exited"; }
    sleep 0.25
  done
  curl -fs "http://127.0.0.1:${PORT[$s]:-0}/readyz" >/dev/null ||
    { tail -5 "$OUT/$s.log" >&2; die "$s not ready within 60 s"; }
done
say "shop $RUN ready: $(for s in "${SERVICES[@]}"; do printf '%s:%s ' "$s" "${PORT[$s]}"; done)"

ports={
for s in "${SERVICES[@]}"; do ports+="\"$s\":${PORT[$s]},"; done
ports=${ports%,}}
"$PYTHON" "$HERE/drive_shop.py" "$ports" "$OUT/http.jsonl" || die "driving the shop failed"

# A message nobody can process: each consumer of the topic dead-letters it.
GARBAGE="not a CloudEvent ($RUN)"
printf '%s' "$GARBAGE" | kcat -b "$B" -P -t "$RUN.orders" -k 00000000-0000-4000-8000-000000000000 ||
  die "kcat could not produce"
sleep 5

: >"$OUT/events.jsonl"
: >"$OUT/dead-letters.jsonl"
for t in "$RUN.orders" "$RUN.payments" "$RUN.inventory" "$RUN.notifications" "$RUN.shipments"; do
  kcat -b "$B" -C -J -e -q -t "$t" | grep -vF "$GARBAGE" >>"$OUT/events.jsonl"
done
for s in payment-service inventory-service email-service analytics-service shipping-service; do
  kcat -b "$B" -C -J -e -q -t "$RUN.dlq.$s" >>"$OUT/dead-letters.jsonl"
done
say "recorded $(wc -l <"$OUT/http.jsonl") exchanges, $(wc -l <"$OUT/events.jsonl") events," \
  "$(wc -l <"$OUT/dead-letters.jsonl") dead letters in $OUT"
"$PYTHON" "$HERE/validate.py" --events "$OUT/events.jsonl" --events "$OUT/dead-letters.jsonl" \
  --http "$OUT/http.jsonl"
rc=$?
n=$(wc -l <"$OUT/dead-letters.jsonl")
if ((n != 5)); then
  say "FAIL: $n dead letters for the unprocessable message; expected 5, one from each" \
    "consumer of the orders topic (payment, inventory, email, analytics, shipping)"
  rc=1
fi
if ((rc == 0 && KEEP == 0)); then
  rm -rf "$OUT"
elif ((rc != 0)); then
  say "recordings and logs kept in $OUT"
fi
exit $rc
