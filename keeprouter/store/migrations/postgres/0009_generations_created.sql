-- The operator's request log lists every key's generations newest first (console logs): without
-- this index that page scans the whole table.
CREATE INDEX generations_created ON generations (created_at);
