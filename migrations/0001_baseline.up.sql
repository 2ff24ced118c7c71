-- Baseline: proposals and their review trail.
CREATE TABLE proposals (
    id          bigserial PRIMARY KEY,
    title       text        NOT NULL,
    body        text        NOT NULL DEFAULT '',
    status      text        NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'submitted', 'approved', 'rejected', 'archived')),
    owner_email text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposals_status_idx ON proposals (status);
CREATE INDEX proposals_created_at_idx ON proposals (created_at);

CREATE TABLE proposal_reviews (
    id          bigserial PRIMARY KEY,
    proposal_id bigint      NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    reviewer    text        NOT NULL,
    verdict     text        NOT NULL CHECK (verdict IN ('approve', 'reject', 'comment')),
    comment     text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX proposal_reviews_proposal_id_idx ON proposal_reviews (proposal_id);
