# shellcheck shell=bash
# Starts and stops the daemons of a shop as plain processes, for scripts
# that need a shop of their own beside others on one broker and one
# database (scripts/compare, lessons/sync-vs-events/tests/chain.sh). Source
# it; it defines functions only.
#
#   shop_event_start RUN BUILD DIR [VAR=VALUE...]
#       the five daemons of the event-driven shop; their topics, consumer
#       groups and schemas are prefixed with RUN, so that the run shares
#       nothing with another; each connects as its service's role, to
#       schemas that deploy/postgres/roles.sql makes for RUN; needs
#       KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL (an administrator's, as
#       tests/infra/postgres writes it)
#   shop_sync_start RUN BUILD DIR [VAR=VALUE...]
#       the four daemons of the synchronous twin (lessons/sync-vs-events),
#       the front door wired to the other three; needs DATABASE_URL, which
#       they use as it is (the twin is a lesson's foil, with no roles)
#   shop_role_schemas RUN the schemas RUN_<role> for the services' roles
#   shop_role_url SERVICE DATABASE_URL as SERVICE's own role
#   shop_stop NAME        SIGTERM, and wait for it
#   shop_start NAME       start a stopped daemon again, on its port, with
#                         its settings and VAR=VALUE... more
#   shop_stop_all         every daemon started here
#   shop_drop_schemas     drops the schemas of every daemon started here
#
# Each daemon is known by NAME ("payment-service", "sync-email"); its pid
# is SHOP_PID[NAME], its port SHOP_PORT[NAME] (HTTP_PORT=0 lets the kernel
# choose; the port is read from the daemon's log), the port of its fault
# switches SHOP_ADMIN[NAME] (with ADMIN_PORT=0; es/faults.h), its log
# DIR/NAME.log.
# Every daemon gets MAILDIR=DIR/NAME-maildir unless VAR=VALUE says
# otherwise. A function that fails prints why and returns non-zero.

declare -gA SHOP_PID=() SHOP_PORT=() SHOP_ADMIN=() SHOP_BIN=() SHOP_ENV=() SHOP_LOG=() SHOP_SCHEMA=()
SHOP_ORDER=()
SHOP_EVENT_SERVICES=(order-service payment-service inventory-service email-service analytics-service)
SHOP_SYNC_SERVICES=(sync-payment sync-inventory sync-email sync-order)
SHOP_READY_S=${SHOP_READY_S:-60}
SHOP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

_shop_say() { printf 'shops: %s\n' "$*" >&2; }

# Launches NAME and waits until its /readyz answers 200.
_shop_launch() { # name port
	local name=$1 port=$2 deadline=$((SECONDS + SHOP_READY_S)) p from
	local -a env
	eval "env=(${SHOP_ENV[$name]})"
	# Only this start's lines of the log tell its ports.
	from=$(($(wc -l <"${SHOP_LOG[$name]}") + 1))
	env HTTP_PORT="$port" HTTP_BIND=127.0.0.1 "${env[@]}" "${SHOP_BIN[$name]}" \
		>>"${SHOP_LOG[$name]}" 2>&1 &
	SHOP_PID[$name]=$!
	while ((SECONDS < deadline)); do
		p=$(tail -n +"$from" "${SHOP_LOG[$name]}" |
			sed -n 's/.*serving HTTP on port \([0-9][0-9]*\).*/\1/p' | tail -1)
		if [[ -n $p ]] && curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$p/readyz"; then
			SHOP_PORT[$name]=$p
			SHOP_ADMIN[$name]=$(tail -n +"$from" "${SHOP_LOG[$name]}" |
				sed -n 's/.*fault switches on port \([0-9][0-9]*\).*/\1/p' | tail -1)
			return 0
		fi
		if ! kill -0 "${SHOP_PID[$name]}" 2>/dev/null; then
			tail -5 "${SHOP_LOG[$name]}" >&2
			_shop_say "$name exited during its start (log: ${SHOP_LOG[$name]})"
			return 1
		fi
		sleep 0.1
	done
	_shop_say "$name was not ready in $SHOP_READY_S s (log: ${SHOP_LOG[$name]})"
	return 1
}

# Registers NAME (binary, log, settings) and starts it on a port of the
# kernel's choosing.
_shop_add() { # name bin dir schema var=value...
	local name=$1 bin=$2 dir=$3 schema=$4 kv
	shift 4
	[[ -x $bin ]] || { _shop_say "$bin is not built"; return 1; }
	SHOP_BIN[$name]=$bin
	SHOP_LOG[$name]=$dir/$name.log
	SHOP_SCHEMA[$name]=$schema
	SHOP_ENV[$name]="DATABASE_SCHEMA=$schema MAILDIR=$(printf %q "$dir/$name-maildir")"
	for kv; do SHOP_ENV[$name]+=" $(printf %q "$kv")"; done
	SHOP_ORDER+=("$name")
	: >"${SHOP_LOG[$name]}"
	_shop_launch "$name" 0
}

shop_event_start() { # run build dir var=value...
	local run=$1 build=$2 dir=$3 s topics
	shift 3
	: "${KAFKA_BOOTSTRAP_SERVERS:?}" "${DATABASE_URL:?}"
	mkdir -p "$dir"
	# The topics first (a consumer does not create what it subscribes to),
	# with the partitions of deploy/topics.txt.
	topics=$dir/topics.txt
	sed -n 's/^\([a-z][^ #]*\)[[:space:]]\{1,\}\([0-9]\{1,\}\).*/'"$run"'.\1 \2/p' \
		"$SHOP_ROOT/deploy/topics.txt" >"$topics"
	"$build/tools/shopctl/shopctl" create-topics "$topics" >/dev/null ||
		{ _shop_say "could not create the topics of $run"; return 1; }
	shop_role_schemas "$run" || return 1
	for s in "${SHOP_EVENT_SERVICES[@]}"; do
		_shop_add "$s" "$build/services/$s/$s" "$dir" "${run}_${s//-/_}" \
			DATABASE_URL="$(shop_role_url "$s")" CONSUMER_GROUP="$run.$s" TOPIC_ORDERS="$run.orders" \
			TOPIC_PAYMENTS="$run.payments" TOPIC_INVENTORY="$run.inventory" \
			TOPIC_NOTIFICATIONS="$run.notifications" TOPIC_DLQ="$run.dlq.$s" "$@" ||
			return 1
	done
}

# The schemas RUN_order_service, ... on DATABASE_URL's database, each owned
# by its service's role (deploy/postgres/roles.sql with a prefix).
shop_role_schemas() { # run
	psql -X -q -v ON_ERROR_STOP=1 -v prefix="${1}_" -d "$DATABASE_URL" \
		-f "$SHOP_ROOT/deploy/postgres/roles.sql" >/dev/null ||
		{ _shop_say "could not make the schemas of $1 (deploy/postgres/roles.sql)"; return 1; }
}

# DATABASE_URL with the user of SERVICE's role (payment-service:
# payment_service), its password from the URL's passfile.
shop_role_url() { # service
	"$SHOP_ROOT/tests/infra/postgres" conninfo "$DATABASE_URL" "user=${1//-/_}"
}

shop_sync_start() { # run build dir var=value...
	local run=$1 build=$2 dir=$3 s bin=$2/lessons/sync-vs-events
	shift 3
	: "${DATABASE_URL:?}"
	mkdir -p "$dir"
	for s in sync-payment sync-inventory sync-email; do
		_shop_add "$s" "$bin/$s" "$dir" "${run}_${s//-/_}" "$@" || return 1
	done
	_shop_add sync-order "$bin/sync-order" "$dir" "${run}_sync_order" \
		PAYMENT_URL="http://127.0.0.1:${SHOP_PORT[sync-payment]}" \
		INVENTORY_URL="http://127.0.0.1:${SHOP_PORT[sync-inventory]}" \
		EMAIL_URL="http://127.0.0.1:${SHOP_PORT[sync-email]}" "$@"
}

shop_stop() { # name
	local pid=${SHOP_PID[$1]:-}
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	SHOP_PID[$1]=
	return 0
}

shop_start() { # name var=value...
	local name=$1 kv
	shift
	for kv; do SHOP_ENV[$name]+=" $(printf %q "$kv")"; done
	_shop_launch "$name" "${SHOP_PORT[$name]}"
}

shop_stop_all() {
	local s
	for s in "${SHOP_ORDER[@]}"; do
		[[ -n ${SHOP_PID[$s]:-} ]] && kill -TERM "${SHOP_PID[$s]}" 2>/dev/null
	done
	for s in "${SHOP_ORDER[@]}"; do shop_stop "$s"; done
}

shop_drop_schemas() {
	local s
	command -v psql >/dev/null || return 0
	for s in "${SHOP_ORDER[@]}"; do
		psql -X -q "$DATABASE_URL" -c "DROP SCHEMA IF EXISTS ${SHOP_SCHEMA[$s]} CASCADE" \
			>/dev/null 2>&1
	done
	return 0
}
