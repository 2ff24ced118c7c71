-- pgshift: no-transaction
-- Documents are looked up by source (ingestion, the source page). documents already holds data,
-- so the index is built CONCURRENTLY: writes continue during the build. pgshift runs this file
-- statement by statement outside a transaction; if the build fails it leaves an INVALID index,
-- which `pgshift status` reports and the next `pgshift up` drops before building it again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS documents_source_id_idx ON documents (source_id);
