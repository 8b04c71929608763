-- The mail worker gives a message up after its last attempt, and says when.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
