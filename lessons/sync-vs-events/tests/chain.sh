#!/usr/bin/env bash
# e2e.sync.chain: the synchronous twin's four daemons as processes on the
# real PostgreSQL, through every path of the chain, each checked by its
# answer and by the state the daemons stored:
#
#   paid and in stock       201 CONFIRMED, stock taken, the mail delivered
#   card declined           201 CANCELLED/PAYMENT_DECLINED, no stock taken
#   out of stock            201 CANCELLED/OUT_OF_STOCK, the charge refunded
#   email-service away      503 naming it; the order FAILED, the charge
#                           refunded and the reservation released
#   email-service back      201 CONFIRMED again
#   bad requests            415, 400, 422 problems, nothing stored
#
# usage: tests/infra/with-infra INFRA_DIR lessons/sync-vs-events/tests/chain.sh BUILD_DIR
set -uo pipefail

PROG=e2e.sync.chain
say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; exit 1; }
FAILS=0
check() { # description, command...
	local what=$1
	shift
	if "$@"; then say "ok: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}

(($# == 1)) || die "usage: $0 BUILD_DIR"
BUILD=$(cd "$1" && pwd) || die "no build directory $1"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DATABASE_URL:?run under tests/infra/with-infra}"
command -v psql >/dev/null || die "psql not found"
command -v jq >/dev/null || die "jq not found"

# shellcheck source=../../../tests/infra/shops.sh
. "$HERE/../../../tests/infra/shops.sh"
RUN=sync$(date +%s)$$
OUT=$(mktemp -d "${TMPDIR:-/tmp}/eventshop-sync.XXXXXX") || die "mktemp failed"
cleanup() {
	shop_stop_all
	shop_drop_schemas
	if ((FAILS == 0)); then rm -rf "$OUT"; else say "logs kept in $OUT"; fi
}
trap cleanup EXIT

shop_sync_start "$RUN" "$BUILD" "$OUT" PAYMENT_LATENCY_MS=50 MAILDIR="$OUT/maildir" ||
	{ FAILS=1; die "the twin did not start"; }
FRONT=http://127.0.0.1:${SHOP_PORT[sync-order]}
say "twin $RUN ready at $FRONT"

sql() { psql -X -At -d "$DATABASE_URL" -c "$1"; }
place() { # sku qty token -> "STATUS BODY"
	curl -s -o "$OUT/body" -w '%{http_code}' "$FRONT/orders" -H 'Content-Type: application/json' \
		-d "{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":\"$3\",\"items\":[{\"sku\":\"$1\",\"quantity\":$2}]}"
}
body() { jq -r "$1" "$OUT/body"; }
stock() { sql "SELECT available FROM ${RUN}_sync_inventory.stock WHERE sku = '$1'"; }
payment() { sql "SELECT outcome || coalesce('/' || reason, '') || CASE WHEN refunded_at IS NULL THEN '' ELSE '/refunded' END FROM ${RUN}_sync_payment.payments WHERE order_id = '$1'"; }
reservation() { sql "SELECT status FROM ${RUN}_sync_inventory.reservations WHERE order_id = '$1'"; }
order_status() { sql "SELECT status || coalesce('/' || cancel_reason, '') FROM ${RUN}_sync_order.orders WHERE order_id = '$1'"; }

# Paid and in stock.
code=$(place mug-classic 2 tok_visa)
id=$(body .orderId)
check "paid and in stock: 201 CONFIRMED ($code $(body .status))" \
	test "$code $(body .status)" = "201 CONFIRMED"
check "the charge is stored ($(payment "$id"))" test "$(payment "$id")" = charged
check "the stock is taken (mug-classic $(stock mug-classic))" test "$(stock mug-classic)" = 998
check "the mail is delivered" test -f "$OUT/maildir/new/$id.order-confirmed.eml"
check "GET /orders/{id} shows it" \
	test "$(curl -fs "$FRONT/orders/$id" | jq -r .status)" = CONFIRMED

# Card declined: the chain stops at payment.
code=$(place hoodie-eda 1 tok_declined)
id=$(body .orderId)
check "card declined: 201 CANCELLED/PAYMENT_DECLINED" \
	test "$code $(body .status)/$(body .cancelReason)" = "201 CANCELLED/PAYMENT_DECLINED"
check "nothing reserved (hoodie-eda $(stock hoodie-eda))" test "$(stock hoodie-eda)" = 500
check "the order is stored CANCELLED" test "$(order_status "$id")" = CANCELLED/PAYMENT_DECLINED

# Out of stock: inventory refuses after the charge; the charge is refunded.
code=$(place poster-limited 6 tok_visa)
id=$(body .orderId)
check "out of stock: 201 CANCELLED/OUT_OF_STOCK" \
	test "$code $(body .status)/$(body .cancelReason)" = "201 CANCELLED/OUT_OF_STOCK"
check "the charge is refunded ($(payment "$id"))" test "$(payment "$id")" = charged/refunded
check "the posters are all there ($(stock poster-limited))" test "$(stock poster-limited)" = 5

# Email away: the whole request fails, and what came before is undone.
shop_stop sync-email
code=$(place tshirt-kafka 3 tok_visa)
id=$(sql "SELECT order_id FROM ${RUN}_sync_order.orders WHERE status = 'FAILED'")
check "email away: 503 ($code)" test "$code" = 503
check "the problem names sync-email" grep -q sync-email "$OUT/body"
check "the order is stored FAILED" test -n "$id"
check "the charge is refunded ($(payment "$id"))" test "$(payment "$id")" = charged/refunded
check "the reservation is released ($(reservation "$id"))" test "$(reservation "$id")" = RELEASED
check "the t-shirts are back ($(stock tshirt-kafka))" test "$(stock tshirt-kafka)" = 1000

# Email back: the chain works again.
shop_start sync-email || die "sync-email did not start again"
code=$(place tshirt-kafka 1 tok_visa)
check "email back: 201 CONFIRMED ($code $(body .status))" \
	test "$code $(body .status)" = "201 CONFIRMED"

# Bad requests: refused before any call, nothing stored.
before=$(sql "SELECT count(*) FROM ${RUN}_sync_order.orders")
code=$(curl -s -o "$OUT/body" -w '%{http_code}' "$FRONT/orders" -H 'Content-Type: text/plain' -d x)
check "text/plain: 415 ($code)" test "$code" = 415
code=$(curl -s -o "$OUT/body" -w '%{http_code}' "$FRONT/orders" -H 'Content-Type: application/json' -d '{')
check "malformed JSON: 400 ($code)" test "$code" = 400
code=$(place no-such-sku 1 tok_visa)
check "unknown sku: 422 problem ($code)" test "$code $(body .errors[0].pointer)" = "422 /items/0/sku"
check "nothing stored" test "$(sql "SELECT count(*) FROM ${RUN}_sync_order.orders")" = "$before"
code=$(curl -s -o /dev/null -w '%{http_code}' "$FRONT/orders/not-a-uuid")
check "GET a malformed id: 400 ($code)" test "$code" = 400

((FAILS == 0)) || die "$FAILS check(s) failed"
say "all checks passed"
