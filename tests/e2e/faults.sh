#!/usr/bin/env bash
# e2e.faults.<CASE>: one fault switch (es/faults.h) on the five daemons as
# processes, on the real broker and database: set it with shopctl faults,
# see its effect through the shop's public interfaces, clear it, see the
# shop recover, and check the saga's invariants on the orders involved.
#
#   pause               payment-service takes nothing: the order waits,
#                       PENDING; cleared, it is confirmed
#   fail_next           payment-service's next 3 batches fail transiently:
#                       es_events_retried_total grows, the order is
#                       confirmed anyway, the switch counted down to 0
#   crash_after_commit  payment-service dies after its commit, before its
#                       offsets: restarted, it skips the redelivered
#                       OrderPlaced (inbox); one PaymentProcessed, confirmed
#   payment_latency     payment_latency_ms=1500: the charge comes at least
#                       1.5 s after OrderPlaced; cleared, orders confirm
#   payment_decline     payment_decline_percent=100: a good card is
#                       declined, the reservation released; cleared, paid
#   admin               the switches are off by default and in /metrics;
#                       no /faults on the public port; a daemon without
#                       ADMIN_PORT has no admin server; ADMIN_PORT equal to
#                       HTTP_PORT stops the start; bound to every address,
#                       a non-local peer gets 403; bad names and values
#                       are refused
#
# usage: tests/infra/with-infra INFRA_DIR tests/e2e/faults.sh BUILD_DIR CASE
set -uo pipefail

PROG=e2e.faults
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; FAILS=$((FAILS + 1)); exit 1; }
FAILS=0
check() { # description, command...
	local what=$1
	shift
	if "$@"; then say "ok: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}

(($# == 2)) || { echo "usage: $0 BUILD_DIR CASE" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) || die "no build directory $1"
CASE=$2
PROG=e2e.faults.$CASE
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${KAFKA_BOOTSTRAP_SERVERS:?run under tests/infra/with-infra}" "${DATABASE_URL:?}"
S=$BUILD/tools/shopctl/shopctl

# shellcheck source=../infra/shops.sh
. "$HERE/../infra/shops.sh"
RUN=faults$(date +%s)$$
OUT=$(mktemp -d "${TMPDIR:-/tmp}/eventshop-faults.XXXXXX") || die "mktemp failed"
cleanup() {
	shop_stop_all
	shop_drop_schemas
	if ((FAILS == 0)); then rm -rf "$OUT"; else say "logs kept in $OUT"; fi
}
trap cleanup EXIT

admin() { echo "http://127.0.0.1:${SHOP_ADMIN[$1]}"; }
faults() { "$S" faults --admin "$(admin "$1")" "${@:2}"; } # service args...
metric() { # service name: its value in /metrics
	curl -fs "http://127.0.0.1:${SHOP_PORT[$1]}/metrics" |
		awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) print s + 0 }'
}
place() { ORDER_SERVICE_URL=$FRONT "$S" place --sku "$1" ${2:+--token "$2"} | head -n 1; }
status_of() { curl -fs "$FRONT/orders/$1" | jq -r '.status + (if .cancelReason then "/" + .cancelReason else "" end)'; }
wait_status() { # order want [seconds]
	local deadline=$((SECONDS + ${3:-30})) st
	while ((SECONDS < deadline)); do
		st=$(status_of "$1")
		[[ $st == "$2" ]] && return 0
		sleep 0.2
	done
	say "order $1 is $st, not $2"
	return 1
}
wait_log() { # service text: true once its log has the text (30 s at most)
	local deadline=$((SECONDS + 30))
	until grep -q "$2" "${SHOP_LOG[$1]}"; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}
# How many events of a type the order has on a topic of this run.
events() { # order topic type
	"$S" watch --from-beginning -e --order "$1" --topics "$RUN.$2" 2>/dev/null | grep -c " $3 "
}
# The contract's invariants 2 and 3 for one order, from the topics. A
# cancelled order's compensation goes on after it is CANCELLED (inventory
# may reserve its stock, then release it), so they are waited for, 30 s at
# most; the counts only grow, so one broken for good still fails.
invariants() { # order
	local st pp pr ir il deadline=$((SECONDS + 30))
	while :; do
		st=$(status_of "$1")
		pp=$(events "$1" payments PaymentProcessed) pr=$(events "$1" payments PaymentRefunded)
		ir=$(events "$1" inventory InventoryReserved) il=$(events "$1" inventory InventoryReleased)
		case $st in
		CONFIRMED) [[ $pp == 1 && $pr == 0 && $ir == 1 && $il == 0 ]] ;;
		CANCELLED*) [[ $pp == "$pr" && $ir == "$il" ]] ;;
		*) false ;;
		esac && return 0
		((SECONDS < deadline)) || break
		sleep 0.2
	done
	say "order $1: $st with $pp charged, $pr refunded, $ir reserved, $il released"
	return 1
}

lists_switch() { faults "$1" list | grep -q "^$2 "; }
refuses() { ! faults "$1" set "$2" "$3" 2>/dev/null; }
admin_on_public_port() {
	local out
	out=$(HTTP_PORT=18999 ADMIN_PORT=18999 timeout 20 "$BUILD/services/payment-service/payment-service" 2>&1)
	(($? != 0)) && grep -q 'ADMIN_PORT: 18999 is HTTP_PORT' <<<"$out"
}

shop_event_start "$RUN" "$BUILD" "$OUT" ADMIN_PORT=0 PAYMENT_LATENCY_MS=50 \
	KAFKA_SESSION_TIMEOUT_MS=6000 || die "the shop did not start"
FRONT=http://127.0.0.1:${SHOP_PORT[order-service]}
say "shop $RUN ready at $FRONT"

case $CASE in
pause)
	check "paused: the switch shows in /metrics" \
		test "$(faults payment-service set pause 1 >/dev/null; metric payment-service es_fault_pause)" = 1
	id=$(place mug-classic)
	check "paused: the order waits for its payment" \
		test "$(ORDER_SERVICE_URL=$FRONT "$S" follow "$id" --timeout 3 >/dev/null 2>&1; echo $?)" = 1
	check "paused: still PENDING" test "$(status_of "$id")" = PENDING
	faults payment-service clear pause >/dev/null
	check "cleared: es_fault_pause 0" test "$(metric payment-service es_fault_pause)" = 0
	check "cleared: the order is confirmed" wait_status "$id" CONFIRMED
	check "invariants hold" invariants "$id"
	;;
fail_next)
	before=$(metric payment-service es_events_retried_total)
	faults payment-service set fail_next 3 >/dev/null
	check "set: es_fault_fail_next 3" test "$(metric payment-service es_fault_fail_next)" = 3
	id=$(place mug-classic)
	check "the order is confirmed after the transient failures" wait_status "$id" CONFIRMED
	check "every failure was retried (es_events_retried_total $before -> $(metric payment-service es_events_retried_total))" \
		test "$(metric payment-service es_events_retried_total)" -ge $((${before:-0} + 3))
	check "the switch counted down to 0" test "$(metric payment-service es_fault_fail_next)" = 0
	check "invariants hold" invariants "$id"
	;;
crash_after_commit)
	pid=${SHOP_PID[payment-service]}
	faults payment-service set crash_after_commit 1 >/dev/null
	id=$(place mug-classic)
	deadline=$((SECONDS + 30))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
	check "payment-service died after its commit" bash -c "! kill -0 $pid 2>/dev/null"
	wait "$pid" 2>/dev/null
	check "it said why" grep -q "crash_after_commit" "${SHOP_LOG[payment-service]}"
	shop_start payment-service || die "payment-service did not start again"
	check "restarted, the switch is off" test "$(metric payment-service es_fault_crash_after_commit)" = 0
	check "the order is confirmed" wait_status "$id" CONFIRMED
	check "the redelivered OrderPlaced was skipped (inbox)" \
		wait_log payment-service "OrderPlaced already processed"
	check "one PaymentProcessed, invariants hold" invariants "$id"
	;;
payment_latency)
	faults payment-service set payment_latency_ms 1500 >/dev/null
	id=$(place mug-classic)
	check "the order is confirmed" wait_status "$id" CONFIRMED
	gap=$(curl -fs "$FRONT/orders/$id" | jq 'def ms: ((.[0:19] + "Z") | fromdate) * 1000 + (.[20:23] | tonumber);
		(.timeline | map(select(.type == "PaymentProcessed"))[0].time | ms) -
		(.timeline | map(select(.type == "OrderPlaced"))[0].time | ms)')
	check "the charge came at least 1500 ms after OrderPlaced ($gap ms)" test "$gap" -ge 1500
	faults payment-service clear >/dev/null
	check "cleared: es_fault_payment_latency_ms -1" \
		test "$(metric payment-service es_fault_payment_latency_ms)" = -1
	id2=$(place mug-classic)
	check "cleared: orders are confirmed" wait_status "$id2" CONFIRMED
	check "invariants hold" invariants "$id"
	check "invariants hold" invariants "$id2"
	;;
payment_decline)
	faults payment-service set payment_decline_percent 100 >/dev/null
	id=$(place mug-classic tok_visa)
	check "a good card is declined" wait_status "$id" CANCELLED/PAYMENT_DECLINED
	check "invariants hold: the reservation released" invariants "$id"
	faults payment-service clear payment_decline_percent >/dev/null
	id2=$(place mug-classic tok_visa)
	check "cleared: the card pays" wait_status "$id2" CONFIRMED
	check "invariants hold" invariants "$id2"
	;;
admin)
	for s in "${SHOP_EVENT_SERVICES[@]}"; do
		check "$s: every switch off by default, in /metrics" \
			test "$(metric "$s" es_fault_pause)$(metric "$s" es_fault_fail_next)$(metric "$s" es_fault_crash_after_commit)" = 000
		check "$s: no /faults on the public port" \
			test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${SHOP_PORT[$s]}/faults")" = 404
	done
	check "payment-service lists its own switches" lists_switch payment-service payment_decline_percent
	check "an unknown switch is refused" refuses payment-service no_such 1
	check "a value out of range is refused" \
		test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$(admin payment-service)/faults/pause" -d '{"value":2}')" = 422
	# Without ADMIN_PORT (the default): no admin server at all.
	shop_stop analytics-service
	SHOP_ENV[analytics-service]=${SHOP_ENV[analytics-service]//ADMIN_PORT=0/}
	shop_start analytics-service || die "analytics-service did not start again"
	check "without ADMIN_PORT there is no admin server" test -z "${SHOP_ADMIN[analytics-service]}"
	check "ADMIN_PORT equal to HTTP_PORT stops the start, naming it" admin_on_public_port
	# Bound to every address: only this machine may set a switch.
	ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -m1 '\.')
	shop_stop inventory-service
	shop_start inventory-service ADMIN_BIND=0.0.0.0 || die "inventory-service did not start again"
	check "bound to 0.0.0.0, a local peer may list" \
		test "$(curl -s -o /dev/null -w '%{http_code}' "$(admin inventory-service)/faults")" = 200
	if [[ -n $ip ]]; then
		check "bound to 0.0.0.0, a peer at $ip gets 403" \
			test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://$ip:${SHOP_ADMIN[inventory-service]}/faults/pause" -d '{"value":1}')" = 403
		check "and the switch stayed off" test "$(metric inventory-service es_fault_pause)" = 0
	else
		say "skipped: this machine has no non-loopback IPv4 address to test a remote peer from"
	fi
	;;
*) die "unknown case $CASE" ;;
esac

((FAILS == 0)) || { say "$FAILS check(s) failed"; exit 1; }
say "all checks passed"
