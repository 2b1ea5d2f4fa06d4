-- The operator's request log lists every key's generations newest first (console logs): without
-- this index that page reads and sorts the whole table. A key's own log keeps its composite index
-- (key_hash, created_at): for a key with few rows among many it is by far the cheaper plan.
CREATE INDEX generations_created ON generations (created_at);
