-- Target schema: templates, sources, ingested documents and ingestion runs.
CREATE TABLE proposal_templates (
    id           bigserial PRIMARY KEY,
    name         text        NOT NULL,
    body         text        NOT NULL,
    -- sha256 of body; NULL until the `hashes` backfill has run
    content_hash text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX proposal_templates_name_key ON proposal_templates (name);

CREATE TABLE sources (
    id         bigserial PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    kind       text        NOT NULL CHECK (kind IN ('upload', 'crawler', 'api', 'manual')),
    url        text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id          bigserial PRIMARY KEY,
    -- legacy imports carry proposal ids that may no longer exist: no foreign key on purpose
    proposal_id bigint,
    source_id   bigint      REFERENCES sources (id),
    title       text        NOT NULL,
    content     text        NOT NULL DEFAULT '',
    origin      text        NOT NULL DEFAULT 'upload',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_proposal_id_idx ON documents (proposal_id);

CREATE TABLE ingestion_runs (
    id            bigserial PRIMARY KEY,
    source_id     bigint      NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    rows_ingested bigint      NOT NULL DEFAULT 0
);
CREATE INDEX ingestion_runs_source_id_idx ON ingestion_runs (source_id, started_at);
