-- The relay is woken by its own daemon after a commit that wrote outbox
-- rows, and by a NOTIFY from an instance whose relay stands by
-- (es_relay_commit_hook), no longer by a trigger: in a database that
-- several services share, each NOTIFY made every listening relay, of every
-- service, run a transaction to read it, and a NOTIFY at commit takes a
-- lock that serializes the commits that carry one.
DROP TRIGGER IF EXISTS es_outbox_notify ON es_outbox;
DROP FUNCTION IF EXISTS es_outbox_notify();
