-- Keep why an ingestion run failed, and when a document was last re-ingested.
-- Nullable columns without defaults: no table rewrite, only a brief lock.
ALTER TABLE ingestion_runs ADD COLUMN error_text text;
ALTER TABLE documents ADD COLUMN reingested_at timestamptz;
