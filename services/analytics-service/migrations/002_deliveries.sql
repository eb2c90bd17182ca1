-- When each order's shipment was delivered (ShipmentDelivered's CloudEvent
-- time), for the time from confirmation to delivery in GET /stats. Joined
-- with analytics_orders when read, so the two topics may deliver in any
-- order. Thrown away and rebuilt like every read model.
CREATE TABLE analytics_deliveries (
  order_id     text        PRIMARY KEY,
  delivered_at timestamptz NOT NULL
);
