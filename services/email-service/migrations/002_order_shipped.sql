-- The order-shipped email (ShipmentDispatched, from shipping-service): one
-- more template in the one CHECK that lists them. The other tables and
-- every row already there are unchanged.
ALTER TABLE email_sent DROP CONSTRAINT email_sent_template_check;
ALTER TABLE email_sent ADD CONSTRAINT email_sent_template_check
  CHECK (template IN ('order-received', 'order-confirmed', 'order-cancelled',
                      'refund-issued', 'order-shipped'));
