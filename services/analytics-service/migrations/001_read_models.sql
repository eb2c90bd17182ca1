-- analytics-service: the read models (CQRS read side). Every table here can
-- be thrown away and rebuilt from the topics (analytics-service --rebuild).

-- One row per order seen on the orders topic. Any orders-topic event may
-- create the row (an upsert), so that the order in which they arrive never
-- corrupts the counts; a terminal status is never overwritten.
CREATE TABLE analytics_orders (
  order_id      text        PRIMARY KEY,
  status        text        NOT NULL DEFAULT 'PENDING'
                CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
  total_cents   bigint      CHECK (total_cents >= 0),
  currency      text,
  cancel_reason text,
  placed_at     timestamptz, -- OrderPlaced's CloudEvent time
  terminal_at   timestamptz, -- OrderConfirmed's or OrderCancelled's time
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'PENDING') = (terminal_at IS NULL)),
  CHECK ((status = 'CANCELLED') = (cancel_reason IS NOT NULL))
);
CREATE INDEX analytics_orders_status ON analytics_orders (status);

-- The lines of each OrderPlaced, so that quantities sold can be counted
-- over the orders that end CONFIRMED, whenever that happens.
CREATE TABLE analytics_order_items (
  order_id text   NOT NULL,
  sku      text   NOT NULL,
  quantity bigint NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, sku)
);

-- Event counters: family 'payments' (processed, failed, refunded),
-- 'reservations' (reserved, rejected, released), 'emails' (per template).
-- Incremented once per event id: the inbox row commits with the increment.
CREATE TABLE analytics_counts (
  family text   NOT NULL,
  name   text   NOT NULL,
  n      bigint NOT NULL CHECK (n >= 0),
  PRIMARY KEY (family, name)
);
