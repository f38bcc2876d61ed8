"""KubeClient's error messages name the server without the password a URL may carry."""

from __future__ import annotations

import pytest

from mic.kube.client import KubeClient
from mic.kube.connection import ClusterConnection
from mic.kube.errors import ConnectionFailure


async def test_connection_failure_masks_a_password_in_the_server_url() -> None:
    # Connections refuse such URLs; this is the defence behind that, for one built by hand.
    client = KubeClient(ClusterConnection(server="http://admin:hunter2@127.0.0.1:1"))
    try:
        with pytest.raises(ConnectionFailure) as caught:
            await client.server_version()
    finally:
        await client.close()
    assert str(caught.value).startswith("cannot reach http://admin:***@127.0.0.1:1")
    assert "hunter2" not in str(caught.value)


def test_redact_url_masks_any_user_info() -> None:
    from mic.kube.connection import redact_url

    assert redact_url("http://proxy:3128") == "http://proxy:3128"
    assert redact_url("http://user:s3cret@proxy:3128/x") == "http://user:***@proxy:3128/x"
    assert redact_url("https://tok3n-value@10.0.0.1:6443") == "https://***@10.0.0.1:6443"
    assert redact_url("https://[::1") == "<invalid URL>"
