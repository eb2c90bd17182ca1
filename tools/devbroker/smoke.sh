#!/usr/bin/env bash
# The development broker end to end: starts eventshop-devbroker (librdkafka's
# in-memory mock cluster, NOT Apache Kafka), runs the five real daemons
# against it, places one order that must be CONFIRMED and one with a
# declined card that must be CANCELLED (PAYMENT_DECLINED) with its
# reservation released, checks that email-service wrote mail and that
# analytics-service counted both orders. Then the replay lesson: stops
# analytics-service, runs `shopctl rebuild-analytics` (which must print
# only its own progress: nothing on stderr), starts analytics-service again
# and waits until /stats shows the same numbers. Finally stops every daemon
# with SIGTERM (each must exit 0) and the broker (which must exit 0 too).
#
# usage: tools/devbroker/smoke.sh [--build-dir DIR] [--pg-env FILE] [--keep]
#
#   --build-dir DIR  where the binaries are: DIR/tools/devbroker/eventshop-devbroker
#                    and DIR/services/<name>/<name> (default: $BUILD_DIR, else
#                    ./build of the repository)
#   --pg-env FILE    source FILE for DATABASE_URL (e.g. the postgres.env that
#                    tests/infra/postgres writes); otherwise DATABASE_URL must
#                    be set
#   --keep           keep the work directory (logs, maildir) and the schemas
#
# Environment: DATABASE_URL; DEVBROKER_BIN and ORDER_SERVICE_BIN,
# PAYMENT_SERVICE_BIN, INVENTORY_SERVICE_BIN, EMAIL_SERVICE_BIN,
# ANALYTICS_SERVICE_BIN override single binaries, SHOPCTL_BIN shopctl
# (default: tools/shopctl/shopctl beside the broker's directory, i.e. of
# the same build); TOPICS_FILE (default
# deploy/topics.txt of the repository); LOG_LEVEL for the daemons (default
# info); SMOKE_TIMEOUT, the seconds each wait may take (default 60).
#
# Every daemon gets its own schema devbroker_<pid>_<name> (dropped at the
# end unless --keep), HTTP_PORT=0 (the kernel picks; the port is read from
# the daemon's "serving HTTP on port" log line), the broker's address and,
# as scripts/demo gives them, KAFKA_SESSION_TIMEOUT_MS=6000 (the mock waits
# a session timeout of the member that left before it rebalances a group).
# Exit status: 0 when everything passed, 1 on a failure (the logs of the
# step that failed are shown), 2 on bad arguments or a missing binary.
set -euo pipefail

PROG=devbroker-smoke
T0=$SECONDS
say() { printf '%s: [%3ds] %s\n' "$PROG" "$((SECONDS - T0))" "$*" >&2; }
fail() {
	say "FAIL: $*"
	exit 1
}
usage_error() {
	say "error: $*"
	exit 2
}

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
TOPICS_FILE=${TOPICS_FILE:-$ROOT/deploy/topics.txt}
TIMEOUT=${SMOKE_TIMEOUT:-60}
KEEP=0
PG_ENV=

while (($#)); do
	case $1 in
	--build-dir) (($# >= 2)) || usage_error "--build-dir needs a value"; BUILD_DIR=$2; shift 2 ;;
	--build-dir=*) BUILD_DIR=${1#*=}; shift ;;
	--pg-env) (($# >= 2)) || usage_error "--pg-env needs a value"; PG_ENV=$2; shift 2 ;;
	--pg-env=*) PG_ENV=${1#*=}; shift ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
	*) usage_error "unknown argument: $1 (try --help)" ;;
	esac
done
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || usage_error "SMOKE_TIMEOUT: \"$TIMEOUT\" is not a number of seconds"

if [[ -n $PG_ENV ]]; then
	[[ -r $PG_ENV ]] || usage_error "--pg-env $PG_ENV: cannot read it"
	# shellcheck disable=SC1090
	DATABASE_URL=$(. "$PG_ENV" && printf '%s' "${DATABASE_URL:-}")
fi
[[ -n ${DATABASE_URL:-} ]] || usage_error "no database: set DATABASE_URL or give --pg-env FILE"

SERVICES=(order-service payment-service inventory-service email-service analytics-service)
declare -A BIN PID PORT LOG
DEVBROKER=${DEVBROKER_BIN:-$BUILD_DIR/tools/devbroker/eventshop-devbroker}
[[ -x $DEVBROKER ]] || usage_error "$DEVBROKER: not built (give --build-dir)"
for s in "${SERVICES[@]}"; do
	var=${s^^}
	var=${var//-/_}_BIN
	BIN[$s]=${!var:-$BUILD_DIR/services/$s/$s}
	[[ -x ${BIN[$s]} ]] || usage_error "${BIN[$s]}: not built (give --build-dir, or $var)"
done
SHOPCTL=${SHOPCTL_BIN:-$(dirname "$DEVBROKER")/../shopctl/shopctl}
[[ -x $SHOPCTL ]] || usage_error "$SHOPCTL: not built (give --build-dir, or SHOPCTL_BIN)"
[[ -r $TOPICS_FILE ]] || usage_error "$TOPICS_FILE: cannot read it"
for tool in curl jq; do
	command -v "$tool" >/dev/null || usage_error "$tool is needed (scripts/install-deps installs it)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devbroker-smoke.XXXXXX")
SCHEMA_PREFIX=devbroker_$$
BROKER_PID=
stopping=0

schema_of() {
	local s=${1%-service}
	printf '%s_%s' "$SCHEMA_PREFIX" "$s"
}

# Sends SIGTERM to pid and waits up to $2 s for it; sets STOP_RC to its
# exit status, or to "timeout" (it is then killed). Not in a $(...): only
# this shell can wait for its children.
STOP_RC=
stop_pid() {
	local pid=$1 limit=$2 deadline=$((SECONDS + $2))

	STOP_RC=0
	kill -TERM "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		STOP_RC="timeout after ${limit}s"
		return
	fi
	wait "$pid" || STOP_RC=$?
}

cleanup() {
	local rc=$?

	((stopping)) && return
	stopping=1
	set +e
	trap '' PIPE
	for s in "${SERVICES[@]}"; do
		[[ -n ${PID[$s]:-} ]] && stop_pid "${PID[$s]}" 15
	done
	[[ -n $BROKER_PID ]] && stop_pid "$BROKER_PID" 10
	if ((KEEP)); then
		say "kept $WORK and the schemas ${SCHEMA_PREFIX}_*"
	else
		drop_schemas
		rm -rf "$WORK"
	fi
	exit "$rc"
}

drop_schemas() {
	local sql=""

	command -v psql >/dev/null || {
		say "psql not found: schemas ${SCHEMA_PREFIX}_* left in the database"
		return
	}
	for s in "${SERVICES[@]}"; do sql+="DROP SCHEMA IF EXISTS $(schema_of "$s") CASCADE; "; done
	PGCONNECT_TIMEOUT=10 timeout 30 psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -c "$sql" \
		>/dev/null 2>&1 || say "could not drop the schemas ${SCHEMA_PREFIX}_*"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Shows the end of a log, for the step that failed.
show_log() {
	say "---- last lines of $1"
	tail -n 25 "$1" >&2 || true
}

# Fails unless pid (named name, logging to log) is still running.
check_alive() {
	kill -0 "$1" 2>/dev/null && return
	show_log "$3"
	fail "$2 exited early"
}

# ---------------------------------------------------------------- broker
say "starting the development broker: $DEVBROKER"
"$DEVBROKER" --topics "$TOPICS_FILE" --env-file "$WORK/kafka.env" \
	>"$WORK/devbroker.out" 2>"$WORK/devbroker.log" &
BROKER_PID=$!
deadline=$((SECONDS + TIMEOUT))
until [[ -s $WORK/kafka.env ]]; do
	check_alive "$BROKER_PID" eventshop-devbroker "$WORK/devbroker.log"
	((SECONDS < deadline)) || fail "no $WORK/kafka.env after ${TIMEOUT}s"
	sleep 0.1
done
BOOTSTRAP=$(sed -n 's/^KAFKA_BOOTSTRAP_SERVERS=//p' "$WORK/kafka.env")
[[ $BOOTSTRAP =~ ^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$ ]] ||
	fail "unexpected env file: $(cat "$WORK/kafka.env")"
grep -q 'NOT APACHE KAFKA' "$WORK/devbroker.log" || fail "the broker's banner is missing"
say "broker up at $BOOTSTRAP (pid $BROKER_PID)"

# ---------------------------------------------------------------- daemons
# Nothing from the caller's environment may redirect a daemon elsewhere:
# every KAFKA_* goes to librdkafka, and the rest would change topics,
# groups or ports.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(KAFKA_|TOPIC_)' || true)
unset CONSUMER_GROUP DATABASE_SCHEMA HTTP_PORT HTTP_BIND SMTP_URL CATALOG_FILE \
	SAGA_TIMEOUT_MS PAYMENT_LATENCY_MS
mkdir -p "$WORK/maildir"
DAEMON_LOG_LEVEL=${LOG_LEVEL:-info}
unset LOG_LEVEL

# The environment of daemon $1 into DENV, for env(1); the rebuild reads the
# same. Through env, so that $! of a daemon started with & is its own pid.
DENV=()
daemon_env() {
	DENV=(KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" KAFKA_SESSION_TIMEOUT_MS=6000
		DATABASE_URL="$DATABASE_URL" DATABASE_SCHEMA="$(schema_of "$1")"
		DATABASE_CONNECT_TIMEOUT_MS=$((TIMEOUT * 1000)))
}

# Starts daemon $1 in the background, its log in $2.
start_daemon() {
	daemon_env "$1"
	env "${DENV[@]}" HTTP_PORT=0 MAILDIR="$WORK/maildir" LOG_LEVEL="$DAEMON_LOG_LEVEL" \
		"${BIN[$1]}" >"$WORK/$1.out" 2>"$2" &
	PID[$1]=$!
	LOG[$1]=$2
	say "started $1 (pid ${PID[$1]}, schema $(schema_of "$1"))"
}

for s in "${SERVICES[@]}"; do
	start_daemon "$s" "$WORK/$s.log"
done

# The port each daemon announces once it serves HTTP.
announced_port() {
	sed -n 's/.*"msg":"serving HTTP on port \([0-9][0-9]*\)".*/\1/p' "$1" | tail -n 1
}

# Waits until daemon $1 (logging to $2) announced its port and is ready.
await_ready() {
	local s=$1 log=$2 deadline=$((SECONDS + TIMEOUT))

	PORT[$s]=
	until [[ -n ${PORT[$s]} ]]; do
		check_alive "${PID[$s]}" "$s" "$log"
		((SECONDS < deadline)) || { show_log "$log"; fail "$s announced no HTTP port in ${TIMEOUT}s"; }
		PORT[$s]=$(announced_port "$log")
		[[ -n ${PORT[$s]} ]] || sleep 0.1
	done
	until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:${PORT[$s]}/readyz") == 200 ]]; do
		check_alive "${PID[$s]}" "$s" "$log"
		if ((SECONDS >= deadline)); then
			say "$s /readyz says: $(curl -s --max-time 2 "http://127.0.0.1:${PORT[$s]}/readyz")"
			show_log "$log"
			fail "$s not ready ${TIMEOUT}s after start"
		fi
		sleep 0.2
	done
	say "$s ready on port ${PORT[$s]}"
}

for s in "${SERVICES[@]}"; do
	await_ready "$s" "$WORK/$s.log"
done
ORDERS=http://127.0.0.1:${PORT[order-service]}

# ---------------------------------------------------------------- orders
# Places an order paid with token $1; prints its id.
place_order() {
	local body out code

	body=$(jq -cn --arg tok "$1" '{customerId: "c-1", customerEmail: "ada@example.com",
		paymentToken: $tok, items: [{sku: "mug-classic", quantity: 1}]}')
	out=$(curl -s --max-time 10 -w '\n%{http_code}' -H 'Content-Type: application/json' \
		-d "$body" "$ORDERS/orders") || fail "POST /orders ($1): curl failed"
	code=${out##*$'\n'}
	[[ $code == 202 ]] || fail "POST /orders ($1): HTTP $code: ${out%$'\n'*}"
	jq -er '.orderId' <<<"${out%$'\n'*}" || fail "POST /orders ($1): no orderId in ${out%$'\n'*}"
}

# Polls GET /orders/$1 until its status is $2; fails on another final
# status or at the deadline. Prints the order's JSON.
await_status() {
	local id=$1 want=$2 got="" order="" deadline=$((SECONDS + TIMEOUT))

	while ((SECONDS < deadline)); do
		order=$(curl -s --max-time 5 "$ORDERS/orders/$id") || order=""
		got=$(jq -r '.status // empty' <<<"$order" 2>/dev/null) || got=""
		[[ $got == "$want" ]] && { printf '%s' "$order"; return; }
		[[ $got == CONFIRMED || $got == CANCELLED ]] &&
			fail "order $id ended $got, wanted $want: $order"
		sleep 0.2
	done
	for s in "${SERVICES[@]}"; do show_log "${LOG[$s]}"; done
	fail "order $id still ${got:-unknown} after ${TIMEOUT}s, wanted $want"
}

id=$(place_order tok_visa)
say "placed order $id (tok_visa), waiting for CONFIRMED"
order=$(await_status "$id" CONFIRMED)
say "order $id CONFIRMED: $(jq -c '[.timeline[].type]' <<<"$order")"

id=$(place_order tok_declined)
say "placed order $id (tok_declined), waiting for CANCELLED"
order=$(await_status "$id" CANCELLED)
reason=$(jq -r '.cancelReason' <<<"$order")
[[ $reason == PAYMENT_DECLINED ]] || fail "order $id cancelled for $reason, not PAYMENT_DECLINED"
# The compensation: the reservation made meanwhile is released.
deadline=$((SECONDS + TIMEOUT))
until jq -e 'any(.timeline[]; .type == "InventoryReleased")' <<<"$order" >/dev/null 2>&1; do
	((SECONDS < deadline)) || fail "order $id: no InventoryReleased after ${TIMEOUT}s: $order"
	sleep 0.2
	order=$(curl -s --max-time 5 "$ORDERS/orders/$id") || order=""
done
say "order $id CANCELLED ($reason): $(jq -c '[.timeline[].type]' <<<"$order")"

# email-service and analytics-service consume too: their results prove it.
deadline=$((SECONDS + TIMEOUT))
stats=""
until [[ $(jq -c '.orders | {placed, confirmed, cancelled}' <<<"$stats" 2>/dev/null) == \
	'{"placed":2,"confirmed":1,"cancelled":1}' ]]; do
	((SECONDS < deadline)) || fail "analytics /stats never counted both orders: $stats"
	sleep 0.2
	stats=$(curl -s --max-time 5 "http://127.0.0.1:${PORT[analytics-service]}/stats") || stats=""
done
say "analytics-service counts: $(jq -c .orders <<<"$stats")"
deadline=$((SECONDS + TIMEOUT))
until compgen -G "$WORK/maildir/new/*" >/dev/null; do
	((SECONDS < deadline)) || fail "email-service wrote no mail to $WORK/maildir/new in ${TIMEOUT}s"
	sleep 0.2
done
say "email-service wrote $(find "$WORK/maildir/new" -type f | wc -l) mail(s) so far"

# ---------------------------------------------------------------- replay
# The lesson of the README: stop analytics-service, rebuild, start it: the
# same numbers, computed again from the topics.
# First every event of the two sagas, so that none arrives after the
# snapshot: a payment each, two reservations and a release, four mails.
STATS_URL="http://127.0.0.1:${PORT[analytics-service]}/stats"
complete='.payments.processed == 1 and .payments.failed == 1 and .reservations.reserved == 2
	and .reservations.released == 1 and ([.emails[]] | add) == 4'
deadline=$((SECONDS + TIMEOUT))
until before=$(curl -s --max-time 5 "$STATS_URL" | jq -S .) &&
	jq -e "$complete" <<<"$before" >/dev/null 2>&1; do
	((SECONDS < deadline)) || fail "analytics /stats never showed both sagas complete: $before"
	sleep 0.2
done
stop_pid "${PID[analytics-service]}" 15
PID[analytics-service]=
[[ $STOP_RC == 0 ]] || { show_log "$WORK/analytics-service.log"; fail "analytics-service: exit $STOP_RC on SIGTERM, wanted 0"; }
say "analytics-service stopped; running shopctl rebuild-analytics"
rc=0
daemon_env analytics-service
env "${DENV[@]}" ANALYTICS_SERVICE_BIN="${BIN[analytics-service]}" \
	timeout $((TIMEOUT * 2)) "$SHOPCTL" rebuild-analytics \
	>"$WORK/rebuild.out" 2>"$WORK/rebuild.err" || rc=$?
sed 's/^/    /' "$WORK/rebuild.out" >&2
if ((rc != 0)); then
	show_log "$WORK/rebuild.err"
	fail "shopctl rebuild-analytics: exit $rc"
fi
grep -q '^done: ' "$WORK/rebuild.out" || fail "shopctl rebuild-analytics printed no done: line"
# A learner sees only the rebuild's progress: no log lines, no warnings.
[[ ! -s $WORK/rebuild.err ]] || { show_log "$WORK/rebuild.err"; fail "shopctl rebuild-analytics wrote to stderr"; }
start_daemon analytics-service "$WORK/analytics-service.2.log"
await_ready analytics-service "$WORK/analytics-service.2.log"
STATS_URL="http://127.0.0.1:${PORT[analytics-service]}/stats"
deadline=$((SECONDS + TIMEOUT))
until [[ $(curl -s --max-time 5 "$STATS_URL" | jq -S . 2>/dev/null) == "$before" ]]; do
	((SECONDS < deadline)) || fail "after the rebuild /stats is $(curl -s --max-time 5 "$STATS_URL"), not $(jq -c . <<<"$before")"
	sleep 0.2
done
say "replayed: /stats equal after the rebuild: $(jq -c .orders <<<"$before")"

# ---------------------------------------------------------------- shutdown
failed=0
for s in "${SERVICES[@]}"; do
	stop_pid "${PID[$s]}" 15
	PID[$s]=
	if [[ $STOP_RC == 0 ]]; then
		say "$s stopped on SIGTERM, exit 0"
	else
		show_log "${LOG[$s]}"
		say "$s: exit $STOP_RC on SIGTERM, wanted 0"
		failed=1
	fi
done
stop_pid "$BROKER_PID" 10
BROKER_PID=
if [[ $STOP_RC == 0 ]]; then
	say "eventshop-devbroker stopped on SIGTERM, exit 0"
else
	show_log "$WORK/devbroker.log"
	say "eventshop-devbroker: exit $STOP_RC on SIGTERM, wanted 0"
	failed=1
fi
[[ ! -e $WORK/kafka.env ]] || { say "eventshop-devbroker left $WORK/kafka.env behind"; failed=1; }
((failed == 0)) || fail "shutdown"
say "PASS: five daemons on the development broker, one order CONFIRMED, one CANCELLED, replayed"
