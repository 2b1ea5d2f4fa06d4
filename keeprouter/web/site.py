"""This server's own base URL, as the pages print it in code samples.

`site.public_url` when configured; else the request's own scheme and host. `X-Forwarded-Proto` /
`X-Forwarded-Host` are believed only from a peer listed in `site.trusted_proxies`: from anyone else
they would let a caller choose the URL another reader of a cached page is told to send a key to.
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from keeprouter.config import SiteConfig

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _trusted(site: SiteConfig, remote: str | None) -> bool:
    if not site.trusted_proxies or not remote:
        return False
    try:
        addr = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(addr in net for net in site.trusted_proxies)


def base_url(site: SiteConfig, request: web.BaseRequest) -> str:
    if site.public_url:
        return site.public_url
    scheme, host = request.scheme, request.headers.get("Host", "")
    if _trusted(site, request.remote):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        fwd_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto in ("http", "https"):
            scheme = proto
        if fwd_host:
            host = fwd_host
    if not _HOST.match(host):  # absent or not a plain host[:port]: never print what a caller made up
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        if sock:
            host = f"[{sock[0]}]:{sock[1]}" if ":" in sock[0] else f"{sock[0]}:{sock[1]}"
        else:
            host = "127.0.0.1:8080"
    return f"{scheme}://{host}"


def is_https(site: SiteConfig, request: web.BaseRequest) -> bool:
    """Whether the browser reached us over https: directly, or through a trusted proxy that says so."""
    if request.secure:
        return True
    if _trusted(site, request.remote):
        return request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower() == "https"
    return False


def client_address(site: SiteConfig, request: web.BaseRequest) -> str:
    """The caller's address: the peer's, or through trusted proxies the nearest untrusted hop of
    X-Forwarded-For (a caller can prepend anything to that header, never append)."""
    addr = request.remote or "?"
    if not _trusted(site, addr):
        return addr
    for hop in reversed([h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]):
        if not _trusted(site, hop):
            return hop
        addr = hop
    return addr
