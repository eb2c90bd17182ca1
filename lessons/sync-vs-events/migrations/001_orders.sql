-- sync-order: the synchronous twin's orders. One row per POST /orders,
-- written PENDING before the chain's first call and given its end after
-- the last: CONFIRMED, CANCELLED (a refusal: PAYMENT_DECLINED,
-- OUT_OF_STOCK) or FAILED (a service of the chain did not answer; detail
-- says which, and what it had done was undone).
CREATE TABLE orders (
	order_id uuid PRIMARY KEY,
	customer_id text NOT NULL,
	customer_email text NOT NULL,
	payment_token text NOT NULL,
	items jsonb NOT NULL,
	total_cents bigint NOT NULL CHECK (total_cents >= 0),
	currency char(3) NOT NULL,
	status text NOT NULL DEFAULT 'PENDING'
		CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'FAILED')),
	cancel_reason text,
	detail text,
	payment_id uuid,
	reservation_id uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
