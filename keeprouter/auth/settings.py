"""The `auth:` section of the config: `auth: {oidc: {issuer, client_id, client_secret,
allowed_domains, admin_emails, default_team}}`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

OIDC_KEYS = ("issuer", "client_id", "client_secret", "allowed_domains", "admin_emails", "default_team",
             "max_keys_per_user")  # fmt: skip
MAX_KEYS_PER_USER = 5  # the default: keys a signed-in person may hold at once, made on their own
MAX_KEYS_CEILING = 1000


class AuthConfigError(ValueError):
    """A refused `auth:` setting; the message names it."""


@dataclass(frozen=True, slots=True)
class OidcConfig:
    issuer: str  # exactly as the provider's discovery document states it (no trailing slash added)
    client_id: str
    client_secret: str | None  # None: a public client (PKCE alone)
    allowed_domains: tuple[str, ...]  # lower-case email domains that may sign in
    admin_emails: tuple[str, ...]  # lower-case addresses that get the operator's console
    default_team: str | None  # the team (id or name) a first sign-in joins; created when missing
    max_keys_per_user: int = MAX_KEYS_PER_USER  # self-serve keys a person may hold; 0: none

    def allows(self, email: str) -> bool:
        """Exact, case-insensitive domain match (no subdomains), or a listed admin address."""
        address = email.strip().lower()
        domain = address.rpartition("@")[2]
        return address in self.admin_emails or (bool(domain) and domain in self.allowed_domains)

    def is_admin(self, email: str) -> bool:
        return email.strip().lower() in self.admin_emails


def loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise AuthConfigError(f"{where}: must be a list of strings")
    return tuple(v.strip().lower() for v in value)


def parse_auth(raw: Any, where: str = "auth") -> OidcConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise AuthConfigError(f"{where}: must be a mapping")
    for k in raw:
        if k != "oidc":
            raise AuthConfigError(f"{where}.{k}: unknown key (expected oidc)")
    o = raw.get("oidc")
    if o is None:
        return None
    where = f"{where}.oidc"
    if not isinstance(o, dict):
        raise AuthConfigError(f"{where}: must be a mapping")
    for k in o:
        if k not in OIDC_KEYS:
            raise AuthConfigError(f"{where}.{k}: unknown key (expected one of {', '.join(OIDC_KEYS)})")
    issuer, client_id = o.get("issuer"), o.get("client_id")
    if not isinstance(issuer, str) or not issuer:
        raise AuthConfigError(f"{where}.issuer: required, the provider's issuer URL")
    parts = urlsplit(issuer)
    # Plain http lets anyone on the path forge the discovery document and the keys: only for a
    # provider on this machine (a development or test setup).
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback(parts.hostname))) or not parts.hostname:
        raise AuthConfigError(f"{where}.issuer: must be an https:// URL (http:// only on a loopback address)")
    if not isinstance(client_id, str) or not client_id:
        raise AuthConfigError(f"{where}.client_id: required")
    secret = o.get("client_secret")
    if secret is not None and not isinstance(secret, str):
        raise AuthConfigError(f"{where}.client_secret: must be a string")
    domains = tuple(d.removeprefix("@") for d in _strings(o.get("allowed_domains"), f"{where}.allowed_domains"))
    admins = _strings(o.get("admin_emails"), f"{where}.admin_emails")
    if not domains and not admins:
        # Without it any account of a public provider (every Google account) could sign in.
        raise AuthConfigError(f"{where}.allowed_domains: list the email domains that may sign in")
    team = o.get("default_team")
    if team is not None and (not isinstance(team, str) or not team.strip()):
        raise AuthConfigError(f"{where}.default_team: must be a team id or name")
    most = o.get("max_keys_per_user", MAX_KEYS_PER_USER)
    if isinstance(most, bool) or not isinstance(most, int) or not 0 <= most <= MAX_KEYS_CEILING:
        raise AuthConfigError(f"{where}.max_keys_per_user: must be a whole number from 0 to {MAX_KEYS_CEILING}")
    return OidcConfig(issuer, client_id, secret or None, domains, admins, team.strip() if team else None, most)
