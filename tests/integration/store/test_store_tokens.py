"""API tokens: hashed storage, lookup, use tracking, duplicates; and settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mic.store import AlreadyExistsError, NotFoundError, Store, hash_token
from mic.store import store as store_module

TOKEN = "mic_6b0f1c4e2a9d4f7e8c3b5a1d0e9f8c7b"


async def test_add_find_list_delete(store: Store) -> None:
    added = await store.add_token("ops", "admin", TOKEN)
    await store.add_token("dashboards", "viewer", "viewer-token")

    assert (added.name, added.role, added.last_used_at) == ("ops", "admin", None)
    assert added.created_at.tzinfo is not None
    found = await store.find_token(TOKEN)
    assert found is not None
    assert (found.id, found.name, found.role) == (added.id, "ops", "admin")
    assert await store.find_token("not-a-token") is None
    listed = [(t.name, t.role) for t in await store.list_tokens()]
    assert listed == [("dashboards", "viewer"), ("ops", "admin")]

    await store.delete_token("ops")
    assert await store.find_token(TOKEN) is None
    with pytest.raises(NotFoundError, match="token 'ops' not found"):
        await store.delete_token("ops")


async def test_token_is_stored_only_as_sha256(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store  # reads the SQLite file's bytes
    await store.add_token("ops", "admin", TOKEN)
    await store.close()  # checkpoints the WAL into the main file

    data = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir())
    assert TOKEN.encode() not in data
    assert hash_token(TOKEN).encode() in data


async def test_last_used_at_is_recorded_at_most_once_per_interval(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.add_token("ops", "admin", TOKEN)
    first = await store.find_token(TOKEN)
    assert first is not None
    assert first.last_used_at is not None
    again = await store.find_token(TOKEN)
    assert again is not None
    assert again.last_used_at == first.last_used_at  # within the interval: a read only

    monkeypatch.setattr(store_module, "TOKEN_TOUCH_INTERVAL", timedelta(0))
    later = await store.find_token(TOKEN)
    assert later is not None
    assert later.last_used_at is not None
    assert later.last_used_at > first.last_used_at
    assert (await store.list_tokens())[0].last_used_at == later.last_used_at


async def test_duplicate_name_or_value_is_refused(store: Store) -> None:
    await store.add_token("ops", "admin", TOKEN)
    with pytest.raises(AlreadyExistsError, match="token 'ops' already exists"):
        await store.add_token("ops", "viewer", "another")
    with pytest.raises(AlreadyExistsError, match="token 'ops' already has the same value"):
        await store.add_token("other", "viewer", TOKEN)


async def test_replace_gives_a_name_a_new_token(store: Store) -> None:
    old = await store.add_token("env-admin", "admin", "old-token")
    new = await store.add_token("env-admin", "viewer", "new-token", replace=True)
    assert new.id == old.id
    assert new.role == "viewer"
    assert await store.find_token("old-token") is None
    assert await store.find_token("new-token") is not None


async def test_invalid_role_or_empty_token(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown token role 'root'"):
        await store.add_token("x", "root", TOKEN)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        await store.add_token("x", "admin", "")


async def test_settings(store: Store) -> None:
    assert await store.get_setting("initial_token_generated") is None
    await store.set_setting("initial_token_generated", "2025-01-01")
    await store.set_setting("initial_token_generated", "again")
    assert await store.get_setting("initial_token_generated") == "again"
