"""The APIServer bench's load generator works against the real server (the full section runs in
``python -m bench.run --only api_server``; its quick run is part of the slow smoke test)."""

from __future__ import annotations

import pytest

from bench.api_server import MODES, codec_costs, generate_load
from tests.actors.api_server.serve import run, serving


@pytest.mark.parametrize("mode", MODES)
def test_each_load_mode_gets_answers(mode: str) -> None:
    async def body() -> dict[str, float]:
        async with serving() as (server, base):
            result = await generate_load(mode, base, concurrency=2, batch=20, warmup=0.05, seconds=0.2)
            assert server.counters["bad_requests"] == 0
            return result

    result = run(body)
    assert result["errors"] == 0 and result["measured"] > 0 and result["items_per_s"] > 0


def test_codec_numbers_are_positive() -> None:
    assert all(value > 0 for value in codec_costs(repeat=2).values())
