"""The store fixtures, defined once in store/backends.py for every test directory."""

from store.backends import clock_fixture, store_fixture, store_url_fixture  # noqa: F401
