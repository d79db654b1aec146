-- Rate limits that must hold across instances (enrollment-code guesses per
-- account): each key's GCRA bucket is its theoretical arrival time. A row
-- whose tat has passed is a full bucket and is swept.
CREATE TABLE rate_limits (
    key TEXT   PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE INDEX rate_limits_by_tat ON rate_limits (tat);
