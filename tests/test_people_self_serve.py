"""A person's own keys ("Get an API key", keeprouter.people.create_own_key) on a real SQLite store:
the key is theirs and in their team, at most `most` of them, its limit within what their budget and
their team's have left, each refusal naming the field at fault."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from keeprouter.errors import InvalidRequest
from keeprouter.keys import KeyService
from keeprouter.people import create_own_key
from keeprouter.store import Store, open_store
from keeprouter.store.base import TeamRecord, UserRecord

NOW = 1_765_000_000.0


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite:///{tmp_path / 'kr.db'}")
    try:
        yield s
    finally:
        await s.close()


async def test_own_keys_are_the_persons_within_the_count_and_budgets(store: Store) -> None:
    keys = KeyService(store, clock=lambda: NOW)
    await store.insert_team(TeamRecord(id="t1", name="T", created_at=NOW, limit=Decimal("3")))
    await store.insert_user(UserRecord(id="u1", email="a@example.com", created_at=NOW, team_id="t1",
                                       limit=Decimal("5"), limit_reset="monthly"))  # fmt: skip
    user = await store.get_user("u1", NOW)
    assert user is not None

    key, rec = await create_own_key(keys, store, user, {"name": " laptop ", "limit": "2.5"}, 2, NOW)
    assert key.startswith("sk-kr-v1-") and (await keys.authenticate(key)).hash == rec.hash
    assert (rec.name, rec.user_id, rec.team_id, rec.limit) == ("laptop", "u1", "t1", Decimal("2.5"))

    with pytest.raises(InvalidRequest) as e:  # the team has 3 left, the user 5: the team's bounds it
        await create_own_key(keys, store, user, {"name": "big", "limit": "3.01"}, 2, NOW)
    assert e.value.param == "limit" and "3.0 USD" in str(e.value) and "team" in str(e.value)
    with pytest.raises(InvalidRequest) as e:
        await create_own_key(keys, store, user, {"name": "bad", "limit_reset": "hourly"}, 2, NOW)
    assert e.value.param == "limit_reset"
    with pytest.raises(InvalidRequest) as e:
        await create_own_key(keys, store, user, {"name": ""}, 2, NOW)
    assert e.value.param == "name"
    _, second = await create_own_key(keys, store, user, {"name": "ci", "limit_reset": "daily"}, 2, NOW)
    assert second.limit is None and second.limit_reset == "daily"  # no limit of its own: the budgets bound it

    await keys.update(second.hash, disabled=True)  # a disabled key still holds its place
    with pytest.raises(InvalidRequest) as e:
        await create_own_key(keys, store, user, {"name": "third"}, 2, NOW)
    assert "2 keys" in str(e.value)
    await keys.delete(second.hash)  # revoking frees it
    await create_own_key(keys, store, user, {"name": "third"}, 2, NOW)
    assert {k.name for k in await keys.list(user_id="u1")} == {"laptop", "third"}

    with pytest.raises(InvalidRequest) as e:  # self-serve off
        await create_own_key(keys, store, user, {"name": "x"}, 0, NOW)
    assert "operator" in str(e.value)


async def test_a_person_without_a_team_is_bounded_by_their_own_budget(store: Store) -> None:
    keys = KeyService(store, clock=lambda: NOW)
    await store.insert_user(UserRecord(id="u2", email="b@example.com", created_at=NOW, limit=Decimal("1")))
    user = await store.get_user("u2", NOW)
    assert user is not None
    with pytest.raises(InvalidRequest) as e:
        await create_own_key(keys, store, user, {"name": "k", "limit": "1.5"}, 5, NOW)
    assert "your budget" in str(e.value)
    _, rec = await create_own_key(keys, store, user, {"name": "k", "limit": "1"}, 5, NOW)
    assert rec.team_id is None and rec.limit == Decimal(1)
