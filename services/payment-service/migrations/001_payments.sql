-- payment-service: one row per order, whatever happened to it.
--
-- The primary key on order_id is what makes "one charge per order" hold:
-- the first OrderPlaced (by any event id) inserts the row with its outcome,
-- every later one hits the key (INSERT ... ON CONFLICT DO NOTHING) and
-- produces nothing. An OrderCancelled that arrives before any OrderPlaced
-- inserts the row as 'voided', so the order can never be charged later.
-- Two transactions racing on one order (two instances during a rebalance)
-- serialize on the key's index entry, so no interleaving leaves a charge
-- without its refund.
CREATE TABLE payments (
  order_id        text        PRIMARY KEY,
  outcome         text        NOT NULL CHECK (outcome IN ('charged', 'declined', 'voided')),
  payment_id      uuid,                  -- set exactly when charged
  amount_cents    bigint      CHECK (amount_cents >= 0),
  currency        text,
  reason          text        CHECK (reason IN ('CARD_DECLINED', 'INSUFFICIENT_FUNDS',
                                                'LIMIT_EXCEEDED')),
  placed_event_id text,                  -- the OrderPlaced that decided (NULL when voided)
  created_at      timestamptz NOT NULL DEFAULT now(),
  cancelled_at    timestamptz,           -- when OrderCancelled was first seen
  cancel_reason   text,
  refunded_at     timestamptz,           -- set once, with the PaymentRefunded in the outbox
  CHECK ((outcome = 'charged') = (payment_id IS NOT NULL)),
  CHECK ((outcome = 'declined') = (reason IS NOT NULL)),
  CHECK (outcome = 'voided' OR (amount_cents IS NOT NULL AND currency IS NOT NULL)),
  CHECK (refunded_at IS NULL OR (outcome = 'charged' AND cancelled_at IS NOT NULL))
);
