-- order-service's own tables: the catalog's prices, the orders with their
-- saga state, the timeline of events per order, and the Idempotency-Keys.

CREATE TABLE products (
	sku text PRIMARY KEY,
	name text NOT NULL,
	price_cents bigint NOT NULL CHECK (price_cents >= 0),
	currency char(3) NOT NULL
);

CREATE TABLE orders (
	order_id uuid PRIMARY KEY,
	customer_id text NOT NULL,
	customer_email text NOT NULL,
	status text NOT NULL DEFAULT 'PENDING'
		CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
	cancel_reason text,
	cancel_detail text,
	total_cents bigint NOT NULL CHECK (total_cents >= 0),
	currency char(3) NOT NULL,
	payment_token text NOT NULL,
	-- The W3C trace context of the request, carried by every event of the
	-- saga, also those without a cause (customer cancel, timeout).
	traceparent text NOT NULL,
	-- What the saga has heard so far; the order is confirmed when both are set.
	payment_id text,
	reservation_id text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- When the saga gives up waiting (SAGA_TIMEOUT_MS after creation).
	deadline timestamptz NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, created_at DESC);
CREATE INDEX orders_created ON orders (created_at DESC);
CREATE INDEX orders_pending_deadline ON orders (deadline) WHERE status = 'PENDING';

CREATE TABLE order_items (
	order_id uuid NOT NULL REFERENCES orders ON DELETE CASCADE,
	line int NOT NULL,
	sku text NOT NULL,
	quantity int NOT NULL CHECK (quantity BETWEEN 1 AND 100),
	unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
	PRIMARY KEY (order_id, line)
);

-- Every event of an order that this service produced or consumed.
CREATE TABLE timeline (
	seq bigserial PRIMARY KEY,
	order_id uuid NOT NULL,
	event_id uuid NOT NULL UNIQUE,
	type text NOT NULL,
	source text NOT NULL,
	time timestamptz NOT NULL
);
CREATE INDEX timeline_order ON timeline (order_id, seq);

-- A POST /orders with an Idempotency-Key: the request's fingerprint and
-- the response it got, replayed to a retry with the same key and body.
CREATE TABLE idempotency_keys (
	key text PRIMARY KEY,
	request_md5 text NOT NULL,
	order_id uuid NOT NULL,
	response_status int NOT NULL,
	response_body text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
