-- Variants of a proposal's wording, as JSONB. A constant default does not rewrite the table.
ALTER TABLE proposals ADD COLUMN variants jsonb NOT NULL DEFAULT '[]'::jsonb;
