-- shipping-service: event-sourced. The table of record is the stream of
-- each shipment's own events; nothing here is ever updated or deleted.
--
-- A shipment's current state is not stored: it is the fold of its stream
-- (shipment_apply in shipment.c), computed on every read. The order
-- service keeps the opposite design (a row per order, updated in place,
-- with a timeline beside it); docs/shipping-lesson.md compares the two.
--
-- (order_id, version) is the optimistic concurrency check: an append
-- writes version = the version it folded + 1, so two transactions that
-- decided from the same state (two instances during a rebalance, the
-- sweep and a handler) cannot both append: the second hits the primary
-- key, rolls back, and decides again from the longer stream.
CREATE TABLE shipment_events (
  order_id    text        NOT NULL,
  version     integer     NOT NULL CHECK (version >= 1),
  event_id    uuid        NOT NULL UNIQUE,  -- the CloudEvent's id, as published
  event_type  text        NOT NULL CHECK (event_type IN ('ShipmentCreated', 'ShipmentDispatched',
                                                         'ShipmentDelivered', 'ShipmentCancelled')),
  event       jsonb       NOT NULL,         -- the whole CloudEvent, as put in the outbox
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, version),
  CHECK ((version = 1) = (event_type = 'ShipmentCreated'))
);

-- The simulation's to-do list: the next step of each shipment still on
-- its way (dispatch, then delivery) and when it is due. Derived from the
-- stream and written in the same transaction as the append that schedules
-- it, so a crash can neither lose a step nor do one twice: after a restart
-- the sweep finds the row and the stream says whether the step was taken.
-- A row is deleted with the append that ends the shipment.
CREATE TABLE shipment_due (
  order_id text        PRIMARY KEY,
  due_at   timestamptz NOT NULL
);
CREATE INDEX shipment_due_at ON shipment_due (due_at);
