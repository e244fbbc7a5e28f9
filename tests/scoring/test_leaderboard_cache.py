"""``Leaderboard.fresh``: the REST hot path's synchronous read answers only what the awaited path
would answer at that moment (the same run, the same bytes), and nothing once a re-read is due."""

from __future__ import annotations

from typing import Any

from scoring.leaderboard import Leaderboard


class _Runs:
    def __init__(self) -> None:
        self.latest: dict[str, Any] | None = None
        self.reads = 0

    async def latest_succeeded(self) -> dict[str, Any] | None:
        self.reads += 1
        return self.latest

    async def leaderboard(self, run_id: str, *, limit: int, projection: dict[str, int]) -> list[dict[str, Any]]:
        return [{"symbol": f"{run_id}-C{i}", "score": 9.0 - i} for i in range(5)]


class _Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_fresh_answers_only_what_the_awaited_path_would() -> None:
    runs, clock = _Runs(), _Clock()
    board = Leaderboard(runs, refresh_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    assert board.fresh(20, 4.0) is None  # nothing read yet
    assert await board.current_run() is None
    assert board.fresh(20, 4.0) is None  # no run yet

    runs.latest = {"run_id": "run_a"}
    board.invalidate()
    run = await board.current_run()
    assert board.fresh(20, 4.0) is None  # these parameters are not encoded yet
    data = await board.data_bytes(run, 20, 4.0)
    assert board.fresh(20, 4.0) == (run, data)
    assert board.fresh(20, 5.0) is None  # other parameters: other bytes

    runs.latest = {"run_id": "run_b"}  # another worker finished a run
    clock.now += 0.5
    assert board.fresh(20, 4.0) == (run, data)  # within refresh_seconds, as current_run would
    clock.now += 0.5
    assert board.fresh(20, 4.0) is None  # a re-read is due: the awaited path decides
    newer = await board.current_run()
    assert newer == {"run_id": "run_b"}
    assert board.fresh(20, 4.0) is None  # the new run's bytes are not encoded yet
    assert b"run_b-C0" in await board.data_bytes(newer, 20, 4.0)
    assert board.fresh(20, 4.0)[0] is newer  # type: ignore[index]

    board.invalidate()  # this process finished a run
    assert board.fresh(20, 4.0) is None
