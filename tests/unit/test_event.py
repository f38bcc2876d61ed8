from mic.events import Event, EventType, new_event_id


def test_event_ids_are_unique_and_sort_in_creation_order() -> None:
    ids = [new_event_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 for i in ids)


def test_event_key_and_api_version() -> None:
    event = Event(
        type=EventType.ADDED,
        cluster="c1",
        group="networking.k8s.io",
        version="v1",
        kind="Ingress",
        resource="ingresses",
        namespace="default",
        name="web",
        uid="u1",
        resource_version="7",
        object={},
    )
    assert event.key == "default/web"
    assert event.api_version == "networking.k8s.io/v1"
