"""The scenario matrix: client APIs x upstream kinds x (stream, not) x scenarios, driven by rows.

- ``upstream_kinds.py``: one row per emulated upstream kind (tests/upstreams): how to start its
  emulator, its provider config block, how to read what reached it.
- ``chat.py``, ``messages.py``, ``responses.py``: one row per client API: how to send a request with
  its official SDK, streamed or not, and read the answer back (``client_api.py`` has the row type).
- ``neutral.py``: the vocabulary the rows translate to and from; ``rows.py``: the tables and ``cases``.
- ``test_*.py``: the scenarios, each asserting what the client got and what reached the upstream.

A new upstream kind or client API joins every scenario by adding its row (and emulator); a scenario
never names a kind or an API.
"""
