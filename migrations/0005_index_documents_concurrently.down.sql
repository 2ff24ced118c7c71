-- pgshift: no-transaction
DROP INDEX CONCURRENTLY IF EXISTS documents_source_id_idx;
