"""Large results become objects a piece at a time, the loop yielded between pieces."""

from __future__ import annotations

import asyncio

from server.storage import steps


async def test_a_large_result_is_converted_in_pieces_with_other_work_between() -> None:
    seen: list[object] = []

    async def api_call() -> None:
        seen.append("api")

    call = asyncio.ensure_future(api_call())  # ready to run at the loop's next turn
    out = await steps.convert(list(range(5)), lambda r: (seen.append(r), r * 10)[1], piece=2)
    await call
    assert out == [0, 10, 20, 30, 40]
    assert seen == [0, 1, "api", 2, 3, 4]


async def test_a_small_result_is_one_piece() -> None:
    assert await steps.convert([1, 2], str) == ["1", "2"]
    assert await steps.convert([], str) == []
