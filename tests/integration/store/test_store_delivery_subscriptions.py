"""Subscriptions: CRUD, errors, generations, the revision counter, secrets kept out of repr."""

from __future__ import annotations

from datetime import UTC

import pytest

from mic.store import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    Store,
    SubscriptionRecord,
)

SECRET = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Njc4"
SPEC = {
    "name": "s1",
    "filter": {"resources": ["ingresses"], "namespaces": None},
    "sink": {"url": "https://hooks.example/x", "headers": {"Authorization": "Bearer hunter2"}},
    "signing_secret": SECRET,
}


def _sub(name: str = "s1", **spec_changes: object) -> SubscriptionRecord:
    return SubscriptionRecord(name, {**SPEC, "name": name, **spec_changes})


async def test_create_get_list(store: Store) -> None:
    created = await store.create_subscription(_sub("s2"))
    await store.create_subscription(_sub("s1"))

    assert created.name == "s2"
    assert created.spec == {**SPEC, "name": "s2"}
    assert created.generation >= 1
    assert created.created_at is not None
    assert created.created_at.utcoffset() == UTC.utcoffset(None)
    assert created.updated_at == created.created_at
    assert await store.get_subscription("s2") == created
    assert [s.name for s in await store.list_subscriptions()] == ["s1", "s2"]


async def test_new_subscription_starts_with_empty_counts(store: Store) -> None:
    await store.create_subscription(_sub())
    counts = await store.counts("s1")
    assert (counts.pending, counts.retrying, counts.dead, counts.delivered_total, counts.dead_total) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert counts.oldest_pending_at is None
    assert await store.backlog("s1") == 0


async def test_errors_name_the_subscription(store: Store) -> None:
    await store.create_subscription(_sub())
    with pytest.raises(AlreadyExistsError, match="subscription 's1' already exists"):
        await store.create_subscription(_sub())
    with pytest.raises(NotFoundError, match="subscription 'nope' not found"):
        await store.get_subscription("nope")
    with pytest.raises(NotFoundError, match="subscription 'nope' not found"):
        await store.replace_subscription(_sub("nope"))
    with pytest.raises(NotFoundError, match="subscription 'nope' not found"):
        await store.delete_subscription("nope")
    with pytest.raises(NotFoundError, match="subscription 'nope' not found"):
        await store.counts("nope")


async def test_replace_bumps_generation_only_on_change(store: Store) -> None:
    created = await store.create_subscription(_sub())
    same = await store.replace_subscription(_sub())
    assert same == created  # a no-op PUT changes nothing, so nothing restarts

    changed = await store.replace_subscription(_sub(format="mic-v1"))
    assert changed.generation > created.generation
    assert changed.spec["format"] == "mic-v1"
    assert changed.created_at == created.created_at
    assert changed.updated_at is not None
    assert created.updated_at is not None
    assert changed.updated_at >= created.updated_at


async def test_replace_with_expected_generation(store: Store) -> None:
    created = await store.create_subscription(_sub())
    await store.replace_subscription(_sub(format="raw"), expected_generation=created.generation)
    with pytest.raises(ConflictError, match="was changed concurrently"):
        await store.replace_subscription(_sub(format="mic-v1"), expected_generation=created.generation)


async def test_generations_are_never_reused(store: Store) -> None:
    first = await store.create_subscription(_sub())
    await store.delete_subscription("s1")
    again = await store.create_subscription(_sub())
    assert again.generation > first.generation


async def test_revision_grows_with_every_change(store: Store) -> None:
    r0 = await store.subscriptions_revision()
    await store.create_subscription(_sub())
    r1 = await store.subscriptions_revision()
    await store.replace_subscription(_sub(format="raw"))
    r2 = await store.subscriptions_revision()
    await store.replace_subscription(_sub(format="raw"))  # no change
    r3 = await store.subscriptions_revision()
    await store.delete_subscription("s1")
    r4 = await store.subscriptions_revision()
    assert r0 < r1 < r2 == r3 < r4


async def test_spec_is_not_in_repr(store: Store) -> None:
    record = await store.create_subscription(_sub())
    for text in (repr(record), str(record), repr(await store.list_subscriptions())):
        assert SECRET not in text
        assert "hunter2" not in text
        assert "s1" in text
