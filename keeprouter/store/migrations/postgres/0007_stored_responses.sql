-- KeepRouter schema 5: stored Responses API responses (store: true), for previous_response_id,
-- item_reference input items and GET/DELETE /v1/responses/{id} (keeprouter.api.stored_responses).
-- Never edit once released: add a new numbered file instead.
-- `owner` is whoever may read a response back (today the key's hash); `input_items` is the whole
-- context the response was generated from, `response` its response object, both JSON text.

CREATE TABLE stored_responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    input_items TEXT NOT NULL,
    response TEXT NOT NULL
);
CREATE INDEX stored_responses_created ON stored_responses (created_at);

-- The items a response added (its new input items and its output items), by id, so a later
-- request may name them in an item_reference. Deleted with their response.
CREATE TABLE stored_response_items (
    response_id TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (response_id, id)
);
CREATE INDEX stored_response_items_owner ON stored_response_items (owner, id);
