-- Stock per sku, seeded from the catalog at start (never reset on restart).
-- The CHECK is the last line of defence against overselling: the conditional
-- updates never take stock below zero, and if a bug tried, the transaction
-- would fail instead.
CREATE TABLE stock (
  sku        text        PRIMARY KEY,
  available  bigint      NOT NULL CHECK (available >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One reservation per order at most: the primary key, not a read before the
-- write, is what makes "reserve once per order" hold. items are the merged
-- lines, sorted by sku: [{"sku": ..., "quantity": ...}].
CREATE TABLE reservations (
  order_id       text        PRIMARY KEY,
  reservation_id uuid        NOT NULL UNIQUE,
  items          jsonb       NOT NULL,
  status         text        NOT NULL CHECK (status IN ('RESERVED', 'RELEASED', 'COMMITTED')),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Orders answered with InventoryRejected, so that another OrderPlaced for
-- the same order (a different event id) is not decided a second time.
-- items: [{"sku": ..., "requested": ..., "available": ...}] as sent.
CREATE TABLE rejections (
  order_id   text        PRIMARY KEY,
  items      jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every OrderCancelled seen. An OrderPlaced that arrives after its order was
-- cancelled (events of one order can arrive out of order, see
-- docs/reliability.md) must reserve nothing.
CREATE TABLE cancellations (
  order_id   text        PRIMARY KEY,
  reason     text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
