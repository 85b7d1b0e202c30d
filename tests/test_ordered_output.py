"""In-order output keeps a bounded buffer, whatever the input's size and however slow a prompt."""

from __future__ import annotations

import asyncio

from tourney.items import Item, dumps
from tourney.judges import build_judge
from tourney.scheduler import REORDER_FACTOR, Scheduler
from tourney.strategy import build_strategy


class SlowFirst:
    """The simulated judge, but prompt q0's matches take 0.5 s each (verdicts unchanged)."""

    def __init__(self):
        self.inner = build_judge("simulated")

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def for_item(self, item):
        return self

    async def judge(self, match):
        if match.prompt_id == "q0":
            await asyncio.sleep(0.5)
        return await self.inner.judge(match)


def test_in_order_output_waits_for_a_slow_early_prompt_in_a_bounded_buffer():
    """Found by fault injection: one slow early prompt held back 45 MB of finished results over
    40k prompts. In-order output now keeps at most REORDER_FACTOR x max_active_prompts items
    started and not yet yielded; the results and their order are those of an unhindered run."""
    its = [Item(i, f"q{i}", f"question {i}", tuple(f"answer {i}.{k}" for k in range(4))) for i in range(600)]
    read = [0]
    most_ahead = [0]

    def source():
        for it in its:
            read[0] += 1
            yield it

    async def go(judge):
        sched = Scheduler(judge, build_strategy("knockout"), seed=2, concurrency=4, max_active_prompts=8)
        out = []
        async for r in sched.run_ordered(source()):
            out.append(r)
            most_ahead[0] = max(most_ahead[0], read[0] - len(out))
        return out

    slow = asyncio.run(go(SlowFirst()))
    assert [r.index for r in slow] == list(range(600))
    assert most_ahead[0] <= REORDER_FACTOR * 8 + 1, most_ahead[0]  # without the bound: all 600
    read[0] = 0
    fast = asyncio.run(go(build_judge("simulated")))
    assert [dumps(r) for r in slow] == [dumps(r) for r in fast]
