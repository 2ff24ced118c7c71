DROP TABLE ingestion_runs;
DROP TABLE documents;
DROP TABLE sources;
DROP TABLE proposal_templates;
