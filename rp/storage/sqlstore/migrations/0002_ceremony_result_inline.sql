-- A finished ceremony's answer moves into the ceremony's own row: saving
-- it becomes one UPDATE of a row the finish has just changed, instead of
-- a lookup and an insert into a second table, in the transaction every
-- sign-in waits for. result_at is NULL until the ceremony has an answer.
ALTER TABLE ceremonies ADD COLUMN request_hash {{blob}};
ALTER TABLE ceremonies ADD COLUMN result {{blob}};
ALTER TABLE ceremonies ADD COLUMN result_at BIGINT;
DROP TABLE ceremony_results;
