"""Signing people in: OpenID Connect (settings and the protocol; the web routes are web/oidc.py)."""
