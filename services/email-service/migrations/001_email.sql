-- email-service's own tables (in its schema, email_service by default).

-- Who to write to about an order: OrderPlaced is the only event that
-- carries the customer's address, so it is kept here for the later emails.
CREATE TABLE email_orders (
  order_id    text        PRIMARY KEY,
  email       text        NOT NULL,
  total_cents bigint      NOT NULL,
  currency    text        NOT NULL,
  placed_at   timestamptz NOT NULL DEFAULT now()
);

-- Emails whose event arrived before the order's OrderPlaced (the topics are
-- consumed independently, so a PaymentRefunded may overtake it). The whole
-- event is kept: it renders the email and is the cause of its EmailSent.
-- Sent, and deleted, when OrderPlaced arrives.
CREATE TABLE email_pending (
  order_id    text        NOT NULL,
  template    text        NOT NULL,
  event       text        NOT NULL, -- the serialized CloudEvent
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, template)
);

-- One row per email delivered, written in the transaction that writes its
-- EmailSent into the outbox. The primary key is the contract's "each
-- (order, template) email is delivered once".
CREATE TABLE email_sent (
  order_id       text        NOT NULL,
  template       text        NOT NULL
                 CHECK (template IN ('order-received', 'order-confirmed',
                                     'order-cancelled', 'refund-issued')),
  recipient      text        NOT NULL,
  message_id     text        NOT NULL,
  cause_event_id text        NOT NULL, -- the event the email is about
  sent_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, template)
);
