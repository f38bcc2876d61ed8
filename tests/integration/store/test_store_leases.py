"""Leases: compare-and-set claims, renewals that fail once the lease changed hands, release."""

from __future__ import annotations

import asyncio

from mic.store import Store


async def test_the_first_claim_creates_the_lease_and_a_second_creation_loses(store: Store) -> None:
    assert await store.get_lease("delivery") is None

    first = await store.claim_lease("delivery", "a", replacing=None)
    second = await store.claim_lease("delivery", "b", replacing=None)

    assert first is not None
    assert (first.holder, first.epoch, first.renewals) == ("a", 1, 0)
    assert second is None
    stored = await store.get_lease("delivery")
    assert stored is not None
    assert (stored.holder, stored.epoch) == ("a", 1)


async def test_a_claim_wins_only_against_the_exact_row_it_read(store: Store) -> None:
    await store.claim_lease("delivery", "a", replacing=None)
    seen = await store.get_lease("delivery")
    assert seen is not None

    assert await store.renew_lease("delivery", "a", 1)  # the holder is alive: the row moved on
    assert await store.claim_lease("delivery", "b", replacing=seen) is None

    current = await store.get_lease("delivery")
    assert current is not None
    assert current.renewals == 1
    taken = await store.claim_lease("delivery", "b", replacing=current)
    assert taken is not None
    assert (taken.holder, taken.epoch) == ("b", 2)
    assert not await store.renew_lease("delivery", "a", 1), "the old holder must learn it lost the lease"
    assert await store.renew_lease("delivery", "b", 2)


async def test_concurrent_claims_of_one_row_have_one_winner(store: Store, db_url: str) -> None:
    others = [await Store.open(db_url) for _ in range(3)]
    try:
        await store.claim_lease("delivery", "old", replacing=None)
        seen = await store.get_lease("delivery")
        results = await asyncio.gather(
            *(other.claim_lease("delivery", f"new-{i}", replacing=seen) for i, other in enumerate(others))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        stored = await store.get_lease("delivery")
        assert stored is not None
        assert stored.holder == winners[0].holder
        assert stored.epoch == 2
    finally:
        for other in others:
            await other.close()


async def test_release_frees_the_lease_only_for_its_holder(store: Store) -> None:
    await store.claim_lease("delivery", "a", replacing=None)

    await store.release_lease("delivery", "b", 1)  # not b's to give
    held = await store.get_lease("delivery")
    assert held is not None
    assert held.holder == "a"

    await store.release_lease("delivery", "a", 1)
    released = await store.get_lease("delivery")
    assert released is not None
    assert released.holder == ""
    assert released.epoch == 1
    assert not await store.renew_lease("delivery", "a", 1)
