ALTER TABLE proposals DROP COLUMN variants;
