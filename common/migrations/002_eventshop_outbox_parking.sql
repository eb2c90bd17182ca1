-- A row the relay gave up on is parked, out of its way, with the reason,
-- until an operator retries it (es/outbox.h); the index finds the parked
-- row a later row of the same key must wait behind.

ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0;
ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;
ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS park_reason text;
CREATE INDEX IF NOT EXISTS es_outbox_parked ON es_outbox (topic, msg_key, id)
  WHERE parked_at IS NOT NULL;
