"""The client side: one folder per client API (parse its requests, render its responses, encode its
streams, render its errors) and one `ClientApi` row each (`registry`). Pure: no I/O, no gateway
types; the routes in `keeprouter.api` drive them."""
