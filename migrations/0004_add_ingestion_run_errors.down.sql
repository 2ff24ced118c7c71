ALTER TABLE documents DROP COLUMN reingested_at;
ALTER TABLE ingestion_runs DROP COLUMN error_text;
