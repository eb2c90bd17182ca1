-- The library's own tables, applied before every service's migrations
-- (common/src/db_migrate.c). es_outbox: the events a service wrote in its
-- transactions, waiting for the relay (common/src/outbox.c); es_inbox: the
-- events a consumer has applied, by id (common/src/inbox.c).
-- Never edit a released migration: add the next number instead.

CREATE TABLE IF NOT EXISTS es_outbox (
  id           bigserial PRIMARY KEY,
  topic        text        NOT NULL,
  msg_key      text        NOT NULL,
  event_id     text        NOT NULL UNIQUE,
  event_type   text        NOT NULL,
  payload      text        NOT NULL, -- the serialized CloudEvent (JSON)
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX IF NOT EXISTS es_outbox_unpublished ON es_outbox (id)
  WHERE published_at IS NULL;

-- Wakes the relay (LISTEN es_outbox_<schema>) once per inserting
-- statement; the relay reads the rows itself, so the payload is empty.
CREATE OR REPLACE FUNCTION es_outbox_notify() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('es_outbox_' || TG_TABLE_SCHEMA, '');
  RETURN NULL;
END $$;
-- CREATE TRIGGER has no IF NOT EXISTS; the drop keeps the file
-- re-runnable by hand.
DROP TRIGGER IF EXISTS es_outbox_notify ON es_outbox;
CREATE TRIGGER es_outbox_notify AFTER INSERT ON es_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION es_outbox_notify();

CREATE TABLE IF NOT EXISTS es_inbox (
  consumer     text        NOT NULL,
  event_id     text        NOT NULL,
  event_type   text,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
