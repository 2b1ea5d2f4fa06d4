-- KeepRouter schema 5: what the prompt cache saved on each generation (OpenRouter's cache_discount).
-- Never edit once released: add 0006_*.sql instead.
-- Nano-dollars like cost_nanos; negative when cache writes cost more than plain input would have.
-- Rows written before this migration saved nothing on record: 0.

ALTER TABLE generations ADD COLUMN cache_discount_nanos BIGINT NOT NULL DEFAULT 0;
