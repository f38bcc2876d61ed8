"""Request bodies over the limit are refused before anything reads them, whoever sends them."""

from __future__ import annotations

import pytest
from mic_api_harness import Api

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_body_over_the_limit_is_413_before_the_token_is_checked(api: Api, method: str) -> None:
    # The original API's DELETE takes a body: without a limit, anyone could send gigabytes.
    huge = b"[" + b"0," * (1024 * 1024) + b"0]"
    async with api.as_token(None) as anonymous:
        response = await anonymous.request(method, "/cic/nitro/v1/config/controller", content=huge)
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["detail"]
