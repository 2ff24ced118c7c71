-- Demo data for the sandbox (schema at 0003). Big enough to make backfills worth watching:
-- 20k proposals, 50k templates without hashes, 200k documents (some orphaned, none linked to a
-- source), legacy-shaped variants.
SELECT setseed(0.42);

INSERT INTO proposals (title, body, status, owner_email, created_at, variants)
SELECT 'Proposal ' || g,
       'Body of proposal ' || g,
       (ARRAY['draft', 'submitted', 'approved', 'rejected', 'archived'])[1 + g % 5],
       'owner' || (g % 300) || '@example.com',
       now() - (g || ' minutes')::interval,
       CASE g % 4
           -- canonical: an array of {"label", "text"} objects
           WHEN 0 THEN jsonb_build_array(jsonb_build_object('label', 'A', 'text', 'Variant A of ' || g))
           -- legacy: a bare array of strings
           WHEN 1 THEN jsonb_build_array('Variant A of ' || g, 'Variant B of ' || g)
           -- legacy: an object keyed by label
           WHEN 2 THEN jsonb_build_object('A', 'Variant A of ' || g)
           ELSE '[]'::jsonb
       END
FROM generate_series(1, 20000) g;

INSERT INTO proposal_reviews (proposal_id, reviewer, verdict, comment)
SELECT 1 + (g % 20000), 'reviewer' || (g % 40) || '@example.com',
       (ARRAY['approve', 'reject', 'comment'])[1 + g % 3], 'Review ' || g
FROM generate_series(1, 30000) g;

INSERT INTO proposal_templates (name, body)
SELECT 'template-' || g, 'Dear {{customer}}, template body number ' || g || repeat(' lorem ipsum', 1 + g % 8)
FROM generate_series(1, 50000) g;

INSERT INTO sources (name, kind, url) VALUES ('legacy-import', 'upload', NULL);

-- 5% of documents point at proposals that were deleted (ids above 20000): the `cleanup` backfill.
INSERT INTO documents (proposal_id, title, content, origin, created_at)
SELECT CASE WHEN g % 20 = 0 THEN 20000 + g ELSE 1 + (g % 20000) END,
       'Document ' || g,
       'Content of document ' || g,
       (ARRAY['upload', 'crawler', 'api'])[1 + g % 3],
       now() - (g || ' seconds')::interval
FROM generate_series(1, 200000) g;

INSERT INTO ingestion_runs (source_id, status, started_at, finished_at, rows_ingested)
SELECT 1, (ARRAY['succeeded', 'failed'])[1 + (g % 7 = 0)::int], now() - (g || ' hours')::interval,
       now() - (g || ' hours')::interval + interval '5 minutes', g * 10
FROM generate_series(1, 200) g;

ANALYZE;
