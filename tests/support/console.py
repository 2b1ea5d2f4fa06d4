"""Signing in to the console as a browser would: fetch the sign-in form (its pre-session token and
nonce cookie), post the key with them, and read the session's CSRF token off the console page."""

from __future__ import annotations

import re

import aiohttp

LOGIN_CSRF = re.compile(r'action="/login" class="login">\s*<input type="hidden" name="csrf" value="([0-9a-f]{64})"')
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def browser() -> aiohttp.ClientSession:
    """A client with a cookie jar that keeps cookies for 127.0.0.1 (aiohttp drops IP hosts' otherwise)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=10))


async def login_token(s: aiohttp.ClientSession, base: str) -> str:
    async with s.get(base + "/login") as r:
        assert r.status == 200
        m = LOGIN_CSRF.search(await r.text())
    assert m, "no sign-in token on /login"
    return m.group(1)


async def post_login(s: aiohttp.ClientSession, base: str, key: str) -> aiohttp.ClientResponse:
    """POST /login with the form's token (not following the redirect); the response, released."""
    token = await login_token(s, base)
    async with s.post(base + "/login", data={"key": key, "csrf": token}, allow_redirects=False) as r:
        await r.read()
        return r


async def csrf_of(s: aiohttp.ClientSession, base: str, path: str = "/console") -> str:
    async with s.get(base + path) as r:
        assert r.status == 200, (path, r.status)
        m = CSRF.search(await r.text())
    assert m, f"no CSRF token on {path}"
    return m.group(1)
