-- What es_retention_prune finds old rows by (es/retention.h). BRIN, not
-- B-tree: rows are written in time order, so a summary per block range is
-- enough to find the old ones, and it costs an insert next to nothing,
-- where a B-tree on the inbox costs every consumed event an index entry.

CREATE INDEX IF NOT EXISTS es_inbox_processed_at ON es_inbox
  USING brin (processed_at) WITH (autosummarize = on);
CREATE INDEX IF NOT EXISTS es_outbox_published_at ON es_outbox
  USING brin (published_at) WITH (autosummarize = on);
