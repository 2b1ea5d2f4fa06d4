"""Console sign-in with OpenID Connect, driven end to end against a real (small, strict) provider on
loopback with an HTTP client that follows redirects and keeps cookies like a browser.

Every refusal must leave no session and create no user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from support.gateway import RunningGateway, run_gateway, sqlite_url
from support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, run_provider

from keeprouter.auth import oidc as oidc_mod
from keeprouter.auth.settings import AuthConfigError, parse_auth
from keeprouter.web.oidc import FLOW_COOKIE
from keeprouter.web.session import COOKIE


@pytest_asyncio.fixture
async def idp() -> AsyncIterator[Provider]:
    async with run_provider() as p:
        yield p


@pytest_asyncio.fixture
async def gw(idp: Provider, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    auth = {"oidc": {"issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                     "allowed_domains": ["Example.com"], "admin_emails": ["boss@elsewhere.org"],
                     "default_team": "engineering"}}  # fmt: skip
    async with run_gateway({"database": sqlite_url(tmp_path), "admin_key": "sk-kr-admin-test", "auth": auth}) as g:
        yield g


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # unsafe: cookies for 127.0.0.1


async def users(gw: RunningGateway) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(gw.url + "/api/v1/users", headers={"Authorization": f"Bearer {gw.admin_key}"}) as r,
    ):
        data: list[dict[str, Any]] = (await r.json())["data"]
        return data


def has_session(s: aiohttp.ClientSession) -> bool:
    return any(c.key == COOKIE for c in s.cookie_jar)


async def sign_in(s: aiohttp.ClientSession, gw: RunningGateway) -> tuple[int, str]:
    async with s.get(gw.url + "/auth/oidc/login") as r:
        return r.status, await r.text()


async def test_login_page_offers_the_provider_and_the_first_sign_in_creates_the_user(
    gw: RunningGateway, idp: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oidc_mod, "REFETCH_EVERY", 0.0)  # the rotation below comes within seconds
    async with browser() as s:
        async with s.get(gw.url + "/login") as r:
            assert r.status == 200 and 'href="/auth/oidc/login"' in await r.text()
            assert 'name="key"' in await r.text(), "the key form stays"
        async with s.get(gw.url + "/auth/oidc/login", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith(idp.url + "/authorize?")
            flow_cookie = r.headers["Set-Cookie"]
            assert "SameSite=Lax" in flow_cookie and "HttpOnly" in flow_cookie and "Path=/auth/oidc" in flow_cookie
            q = parse_qs(urlsplit(r.headers["Location"]).query)
            assert q["code_challenge_method"] == ["S256"] and q["nonce"] and q["state"]
            assert q["redirect_uri"] == [gw.url + "/auth/oidc/callback"]
        status, text = await sign_in(s, gw)
        assert status == 200 and "Signed in as ada@example.com" in text and 'url=/console"' in text
        assert has_session(s) and not any(c.key == FLOW_COOKIE and c.value for c in s.cookie_jar)
        async with s.get(gw.url + "/console") as r:  # a person's console: their own usage
            text = await r.text()
            assert r.status == 200 and r.url.path == "/console/me", (r.status, text)
            assert "Signed in as ada@example.com" in text and "Team engineering" in text
    listed = await users(gw)
    assert [u["email"] for u in listed] == ["ada@example.com"]
    team_id = listed[0]["team_id"]
    async with (
        aiohttp.ClientSession() as s,
        s.get(gw.url + f"/api/v1/teams/{team_id}", headers={"Authorization": f"Bearer {gw.admin_key}"}) as r,
    ):
        assert (await r.json())["data"]["name"] == "engineering", "the default team, created on first use"

    # a second sign-in finds the same user; a rotated signing key is fetched again
    idp.rotate()
    before = idp.jwks_requests
    async with browser() as s:
        status, text = await sign_in(s, gw)
        assert status == 200 and has_session(s), text
    assert idp.jwks_requests == before + 1
    assert len(await users(gw)) == 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"email": "eve@evil.com"}, "not allowed"),
        ({"email": "eve@sub.example.com"}, "not allowed"),  # domains match exactly
        ({"email_verified": False}, "not verified"),
        ({"nonce": "another"}, "nonce"),
        ({"aud": "someone-else"}, "aud"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired"),
        ({"iss": "https://impostor.example"}, "iss"),
        ("unknown key", "invalid_key_id"),
    ],
)
async def test_refusals_leave_no_session_and_create_nothing(
    gw: RunningGateway, idp: Provider, change: Any, why: str
) -> None:
    if change == "unknown key":
        idp.sign_with_unknown_key = True
    else:
        idp.next_claims = change
    async with browser() as s:
        status, text = await sign_in(s, gw)
        assert status == 403 and "Sign-in refused" in text and why in text, text
        assert not has_session(s)
    assert await users(gw) == []


async def test_tampered_state_and_replayed_codes_are_refused(gw: RunningGateway, idp: Provider) -> None:
    async with browser() as s:
        async with s.get(gw.url + "/auth/oidc/login", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with s.get(authorize, allow_redirects=False) as r:
            back = r.headers["Location"]
        code = parse_qs(urlsplit(back).query)["code"][0]
        async with s.get(gw.url + "/auth/oidc/callback", params={"code": code, "state": "tampered"}) as r:
            assert r.status == 403 and "state" in await r.text()
        assert not has_session(s) and idp.token_requests == 0, "refused before the code was redeemed"

    async with browser() as s:
        status, _ = await sign_in(s, gw)
        assert status == 200
    used = idp.token_requests
    async with browser() as s:  # a fresh flow, replaying a code the provider already spent
        async with s.get(gw.url + "/auth/oidc/login", allow_redirects=False) as r:
            state = parse_qs(urlsplit(r.headers["Location"]).query)["state"][0]
        async with s.get(authorize, allow_redirects=False):
            pass
        async with s.get(gw.url + "/auth/oidc/callback", params={"code": code, "state": state}) as r:
            text = await r.text()
        assert r.status == 403 and "did not redeem" in text, text
        assert not has_session(s) and idp.token_requests == used + 1
    async with browser() as s:  # no flow cookie at all (started elsewhere, or expired)
        async with s.get(gw.url + "/auth/oidc/callback", params={"code": "x", "state": "y"}) as r:
            assert r.status == 403 and not has_session(s)


def test_settings_refuse_plain_http_off_loopback_and_open_domains() -> None:
    base = {"client_id": "c", "allowed_domains": ["example.com"]}
    assert parse_auth({"oidc": {"issuer": "http://127.0.0.1:9/", **base}}) is not None
    for bad in (
        {"issuer": "http://idp.example.com", **base},
        {"issuer": "https://idp.example.com", "client_id": "c"},
        {"issuer": "https://idp.example.com", **base, "tenant": "x"},
    ):
        with pytest.raises(AuthConfigError):
            parse_auth({"oidc": bad})
    cfg = parse_auth({"oidc": {"issuer": "https://idp.example.com", **base, "admin_emails": ["Boss@Else.org"]}})
    assert cfg is not None and cfg.allows("ADA@EXAMPLE.COM") and cfg.allows("boss@else.org")
    assert not cfg.allows("ada@example.com.evil.org") and not cfg.allows("ada@sub.example.com")
    assert cfg.max_keys_per_user == 5  # self-serve keys per person, by default
    off = parse_auth({"oidc": {"issuer": "https://idp.example.com", **base, "max_keys_per_user": 0}})
    assert off is not None and off.max_keys_per_user == 0
    for most in (-1, "5", True, 1001):
        with pytest.raises(AuthConfigError, match="max_keys_per_user"):
            parse_auth({"oidc": {"issuer": "https://idp.example.com", **base, "max_keys_per_user": most}})
    assert oidc_mod.REFETCH_EVERY > 0
