-- Removed IDs (issue 16): an ID removed by the registration authority keeps its row, so that
-- it is never reused and its certificates and history stay for audit; these columns say
-- when it was removed (NULL: not removed), the instant split as every other one.
ALTER TABLE accounts ADD COLUMN removed_at timestamptz, ADD COLUMN removed_at_ns smallint;
ALTER TABLE accounts ADD CHECK ((removed_at IS NULL) = (removed_at_ns IS NULL));
