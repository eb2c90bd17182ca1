-- loyalty-service (the exercise's reference solution).

-- Whose each order is: only OrderPlaced names the customer, so it is kept
-- for the events that follow. earned is set once, by the order's first
-- OrderConfirmed; refunded once, by its first PaymentRefunded.
CREATE TABLE loyalty_orders (
  order_id    text    PRIMARY KEY,
  customer_id text    NOT NULL,
  earned      bigint  CHECK (earned >= 0),
  refunded    boolean NOT NULL DEFAULT false
);

-- Each customer's points: what their confirmed orders earned, less what
-- their refunds took back.
CREATE TABLE loyalty_points (
  customer_id text   PRIMARY KEY,
  points      bigint NOT NULL CHECK (points >= 0)
);
