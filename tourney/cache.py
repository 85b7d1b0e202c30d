"""Adapter between the scheduler and the judgement store (one key per judge sample).

Never pay twice. Before a match is judged the scheduler calls :meth:`StoreCache.acquire`: the
match's stored samples come back, and the missing ones are claimed, so that no other task of
this run and no other process sharing the store judges them meanwhile. Two levels:

* across processes, a CLAIM (a lease row in the store, :meth:`JudgementStore.claim`) covers one
  judge's work on one prompt: its key is the sha256 of the canonical JSON of ``{"claim":
  "prompt", "judge": the judge's identity, "prompt_sha256": the prompt's sha256}`` (the same
  prompt text under any id; per-pair ``scores`` are not part of it, so it covers all of them).
  The lease is taken in the write transaction that reads which of that prompt's judgements are
  stored: every other one is missing, and no other run adds it while the lease is held. A run
  that finds the lease held by another live run waits for it (without blocking the event loop:
  the store's writer thread re-examines it every ``poll_s``) and meanwhile works on prompts
  nobody holds, so runs sharing a store split the input between them. When the holder
  finishes the prompt it gives the lease back (after its judgements are committed), and the
  waiting run takes it and finds those judgements stored. A lease is renewed while its run
  lives and taken over when its process dies.
* inside this process, each judgement key some task is judging is held in memory; another task
  that wants it (a duplicate-content prompt in flight at once) waits for it and reuses it.

A waiter never holds a key while it waits, and a task holding keys is always runnable, so no
two tasks or runs wait for each other. :meth:`save` puts the new judgements (the store's writer
thread commits them off the event loop), :meth:`release` gives back the keys a task claimed and
did not save (a retry, a failure, a cancelled run), and :meth:`done` tells the cache that an
item's prompt is finished, which gives its lease back once no other in-flight item shares it.

The key covers the judge's identity (model, format, sampling settings: ``Judge.identity()``),
the prompt, the two responses in their order and the sample index, so a match already paid
for, in this run or any earlier one with the same judge, is answered from the store.

When the input item has ``scores`` (the simulated judge's truth, which reaches that judge
through :meth:`~tourney.judges.base.Judge.for_item`), the key also covers the pair's scores in
presentation order: an edited ``scores`` never reuses old verdicts. They enter the identity part
of the key as ``{**identity, "scores": [first's, second's]}``, for every judge, exactly as stores
written before this layout keyed them, so those stores keep answering.

Cost on the event loop, per match: one sha256 of ~250 bytes (each prompt's texts are hashed
once per prompt, not per match) and a few dict operations; reads of the file only for keys the
store holds; one claim round trip to the writer thread per prompt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import StoreError
from .hashing import sha256_hex
from .items import Item
from .judges.base import Judge
from .store import JudgementStore, _key_from_hashes, canonical_json
from .types import Judgement, Match, Outcome, Prompt

__all__ = ["Lease", "StoreCache"]


def _claim_key(identity_json: str, prompt_hash: str) -> str:
    """sha256 of the canonical JSON ``{"claim": "prompt", "judge": identity, "prompt_sha256": prompt_hash}``."""
    return sha256_hex('{"claim":"prompt","judge":' + identity_json + ',"prompt_sha256":"' + prompt_hash + '"}')


#: new matches wait (off the workers: :meth:`StoreCache.backlogged`, :meth:`StoreCache.drained`)
#: while the store's writer has more puts than this to commit: it bounds the memory of the queue
#: and what a kill loses when judgements come faster than commits (an instant judge on a busy
#: machine); a real judge never comes near it
MAX_BACKLOG = 500
#: ... re-checked this often (seconds)
BACKLOG_WAIT_S = 0.005
#: prompts whose text digests are remembered (more than the scheduler's active window)
_ITEM_CACHE = 512


@dataclass
class Lease:
    """What :meth:`StoreCache.acquire` got for a match: ``stored`` samples (by sample index:
    judgements paid before, by any run) and ``claimed`` samples (sample index -> key) this task
    must judge and save, or release."""

    stored: dict[int, Judgement]
    claimed: dict[int, str]
    #: the match it was taken for, and what :meth:`StoreCache.save` reuses of its keys' making
    #: (the prompt's digests; the judge part of the key and the two responses' sha256)
    match: Match | None = None
    digests: _Digests | None = field(default=None, repr=False)
    parts: tuple[str, str, str] | None = field(default=None, repr=False)


class _Digests:
    """A prompt's canonical JSON and the sha256 hex of it and of its responses (hashed once)."""

    __slots__ = ("claim_key", "item", "prompt_hash", "prompt_json", "responses")

    def __init__(self, item: Item | None, prompt: Prompt, identity_json: str):
        self.item = item
        self.prompt_json = canonical_json(prompt)
        self.prompt_hash = sha256_hex(self.prompt_json)
        self.claim_key = _claim_key(identity_json, self.prompt_hash)
        self.responses: dict[str, str] = {}

    def of(self, text: str) -> str:
        h = self.responses.get(text)  # (not try/except: each response misses once, and a raise costs)
        if h is None:
            h = self.responses[text] = sha256_hex(text)
        return h


class _PromptClaim:
    """This run's lease on one judge's work on one prompt (shared by the in-flight items with
    that prompt text): ``future`` resolves once the store granted it, with the keys stored then;
    ``stored`` grows with every judgement this run saves under it; ``users`` are the items."""

    __slots__ = ("future", "granted", "key", "request", "stored", "users")

    def __init__(self, key: str, future: asyncio.Future):
        self.key = key
        self.future = future
        self.granted = False  # the future's result is set (the lease is this run's)
        self.request: concurrent.futures.Future | None = None  # the store's, until it resolves
        self.stored: set[str] = set()
        self.users: set[int] = set()


class StoreCache:
    """The scheduler's :class:`~tourney.scheduler.JudgementCache` on a :class:`JudgementStore`,
    for the answers of ``judge`` (keyed by its identity; see the module docstring)."""

    def __init__(self, store: JudgementStore, judge: Judge):
        self.store = store
        self.identity = judge.identity()
        # a judge's per-match part of its identity; None where the judge keeps Judge's default ({}),
        # so the common case builds keys from the cached identity JSON alone
        own = getattr(type(judge), "match_identity", Judge.match_identity)
        self._match_identity = None if own is Judge.match_identity else judge.match_identity
        self._identity_json = canonical_json(self.identity)
        self._identity_hash = sha256_hex(self._identity_json)
        self._digests: OrderedDict[int, _Digests] = OrderedDict()
        self._claims: dict[str, _PromptClaim] = {}  # claim key -> this run's lease
        # judgement keys some task of this run is judging -> None, or a future another task waits on
        self._inflight: dict[str, asyncio.Future | None] = {}
        self._resolved: deque[_PromptClaim] = deque()  # claims the writer thread resolved
        self._drained: asyncio.Future | None = None  # done when the store's backlog went down (see acquire)
        self._drain_scheduled = False

    # ------------------------------------------------------------------ keys

    def _judge_json(self, match: Match, item: Item | None) -> str:
        # the input's `scores` decide a simulated judge's verdicts, and a judge may treat one match
        # apart (Judge.match_identity: the model judges' candidate defences): both part of the key (see the module docstring)
        extra = self._match_identity(match) if self._match_identity is not None else None
        if item is None or item.scores is None:
            return canonical_json({**self.identity, **extra}) if extra else self._identity_json
        scores = [item.scores[match.first], item.scores[match.second]]
        return canonical_json({**self.identity, **(extra or {}), "scores": scores})

    def _item_digests(self, match: Match, item: Item | None) -> _Digests:
        if item is None or item.prompt is not match.prompt:  # not the scheduler's own match: no reuse
            return _Digests(None, match.prompt, self._identity_json)
        d = self._digests.get(id(item))
        return d if d is not None and d.item is item else self._digests_of(item)

    def keys(self, match: Match, item: Item | None = None) -> dict[int, str]:
        """The store key of each sample of ``match`` (from input ``item``), by sample index."""
        return self._keys(match, item, self._item_digests(match, item))

    def _keys(self, match: Match, item: Item | None, d: _Digests) -> dict[int, str]:
        return self._keys_of(match, d, self._parts(match, item, d))

    def _parts(self, match: Match, item: Item | None, d: _Digests) -> tuple[str, str, str]:
        """The judge part of ``match``'s keys (canonical JSON) and the sha256 of its two responses."""
        plain = self._match_identity is None and (item is None or item.scores is None)
        judge_json = self._identity_json if plain else self._judge_json(match, item)
        return judge_json, d.of(match.first_text), d.of(match.second_text)

    @staticmethod
    def _keys_of(match: Match, d: _Digests, parts: tuple[str, str, str]) -> dict[int, str]:
        judge_json, fh, sh = parts
        offset = match.sample_offset
        if match.samples == 1:
            return {offset: _key_from_hashes(judge_json, d.prompt_hash, fh, sh, offset)}
        return {
            s: _key_from_hashes(judge_json, d.prompt_hash, fh, sh, s) for s in range(offset, offset + match.samples)
        }

    def claim_key(self, prompt_hash: str) -> str:
        """The key of this judge's claim on the prompt whose canonical JSON has sha256 ``prompt_hash``."""
        return _claim_key(self._identity_json, prompt_hash)

    # ------------------------------------------------------------------ the scheduler's calls

    def lookup(self, match: Match, item: Item | None = None) -> dict[int, Judgement]:
        """The stored samples of ``match`` (from input ``item``), by sample index: only those
        present (pending or committed, verified). Takes no claim: for inspection and tests."""
        keys = self.keys(match, item)
        found = self.store.get_many(keys.values())
        return {s: found[k] for s, k in keys.items() if k in found}

    def try_acquire(self, match: Match, item: Item | None = None) -> Lease | None:
        """:meth:`acquire` without waiting: the lease, or None when it would have to wait (the
        prompt's claim is not granted yet, or another task of this run judges a sample)."""
        d = self._item_digests(match, item)
        claim = self._claims.get(d.claim_key)
        if claim is None:
            return None
        claim.users.add(id(item) if item is not None else id(match))  # before any wait: it must not be given back
        if not claim.granted or self.backlogged():
            return None
        parts = self._parts(match, item, d)
        keys = self._keys_of(match, d, parts)
        inflight = self._inflight
        for k in keys.values():
            if k in inflight:
                return None
        # under the claim, a key is stored (pending or committed) only if the claim's grant or
        # this run's saves put it in claim.stored: nobody else adds keys to a held prompt
        known = [k for k in keys.values() if k in claim.stored] if claim.stored else ()
        found: dict[str, Judgement] = {}
        if known:
            found = self.store.pending(known)
            on_file = [k for k in known if k not in found]
            if on_file:
                found.update(self.store.get_many(on_file))  # verified against each row's hash
        stored: dict[int, Judgement] = {}
        claimed: dict[int, str] = {}
        for s, k in keys.items():
            if k in found:
                stored[s] = found[k]
            else:
                claimed[s] = k
                inflight[k] = None  # no await since the check above: atomic within the loop
        return Lease(stored, claimed, match, d, parts)

    async def acquire(self, match: Match, item: Item | None = None) -> Lease:
        """The stored samples of ``match``, and a claim on the others (see the module
        docstring). Waits while another process holds the prompt or another task of this run
        judges one of the samples. Raises :class:`StoreError` when the store cannot be read or
        written, or a stored row fails its hash check."""
        loop = asyncio.get_running_loop()
        while True:
            lease = self.try_acquire(match, item)
            if lease is not None:
                return lease
            if self.backlogged():  # let the writer catch up: bounds memory and a kill's losses
                if self._drained is None or self._drained.done():
                    self._drained = asyncio.ensure_future(self.drained())
                    # its error is every waiter's; retrieved here too, for when none is left
                    self._drained.add_done_callback(lambda f: f.cancelled() or f.exception())
                await asyncio.shield(self._drained)  # one task polls for every waiter
                continue
            d = self._item_digests(match, item)
            claim = self._claims.get(d.claim_key)
            if claim is None or not claim.future.done():
                await self._prompt_claim(d, id(item) if item is not None else id(match))
                continue
            waits = []  # another task of this run judges a sample: wait until it lets go
            for k in self.keys(match, item).values():
                if k in self._inflight:
                    f = self._inflight[k]
                    if f is None:
                        f = self._inflight[k] = loop.create_future()
                    waits.append(f)
            await asyncio.wait(waits)

    def backlogged(self) -> bool:
        """Whether the store's writer is more than ``MAX_BACKLOG`` puts behind: the scheduler then
        holds new matches back until :meth:`drained`."""
        return self.store.backlog > MAX_BACKLOG

    async def drained(self) -> None:
        """Wait until the store's writer is at most ``MAX_BACKLOG // 2`` puts behind (one waiter
        polls for every held match). Raises :class:`StoreError` when its commits fail: the puts
        would never drain."""
        store = self.store
        while store.backlog > MAX_BACKLOG // 2:
            if store._error is not None:
                raise store._error
            await asyncio.sleep(BACKLOG_WAIT_S)

    def save(
        self, match: Match, judgements: Sequence[Judgement], item: Item | None = None, lease: Lease | None = None
    ) -> None:
        """Store ``judgements`` (samples ``match.sample_offset ..``) of ``match`` from input
        ``item``: pending at once (other tasks waiting for these keys get them), committed by the
        store's writer thread within its flush interval. ``lease``: the one these samples were
        claimed under (:meth:`acquire`), whose keys are used instead of hashing them again. Raises
        :class:`StoreError` when the store cannot take them (an earlier commit failed; they stay
        pending)."""
        claimed = lease.claimed if lease is not None else {}
        if lease is not None and lease.parts is not None and lease.digests is not None:
            (judge_json, fh, sh), d = lease.parts, lease.digests  # what acquire computed for these texts
        else:
            d = self._item_digests(match, item)
            judge_json, fh, sh = self._parts(match, item, d)
        judge_hash = self._identity_hash if judge_json is self._identity_json else sha256_hex(judge_json)
        claim = self._claims.get(d.claim_key)
        failure: StoreError | None = None
        for k, j in enumerate(judgements):  # put every judgement, even after a failed commit
            sample = match.sample_offset + k
            if j.sample != sample:
                j = dataclasses.replace(j, sample=sample)
            key = claimed.get(sample) or _key_from_hashes(judge_json, d.prompt_hash, fh, sh, sample)
            try:
                self.store._put_hashed(  # digests computed with the store's own recipe
                    key, j, match.prompt_id, match.first, match.second, judge_json, judge_hash, d.prompt_json,
                    d.prompt_hash, match.first_text, fh, match.second_text, sh,
                )  # fmt: skip
            except StoreError as exc:
                failure = failure or exc
            if claim is not None and j.outcome is not Outcome.ERROR:
                claim.stored.add(key)
            self._let_go(key)
            if claimed.get(sample) == key:
                del claimed[sample]  # saved: release(lease) has nothing left to give back for it
        if failure is not None:
            raise failure

    def release(self, lease: Lease) -> None:
        """Give back the keys of ``lease`` that were not saved (idempotent)."""
        for k in lease.claimed.values():
            self._let_go(k)
        lease.claimed = {}

    def prefetch(self, item: Item) -> None:
        """Ask for the claim on ``item``'s prompt now (the scheduler calls it when it reads the
        item, before the item waits for room), so it is granted when the item's matches come.
        Pair it with :meth:`started`. Never raises: a store error surfaces at :meth:`acquire`."""
        with contextlib.suppress(StoreError):
            self._claim_of(self._digests_of(item)).users.add(-id(item))

    def started(self, item: Item) -> None:
        """The scheduler started ``item`` (its first matches were acquired, or it finished at
        once): drop the hold :meth:`prefetch` took."""
        self._drop_user(self._digests_of(item).claim_key, -id(item))

    def done(self, item: Item) -> None:
        """``item``'s prompt is finished: give back its prompt's lease when no other in-flight
        item shares it (the store commits the release after the item's judgements)."""
        d = self._digests.pop(id(item), None)  # an item's digests live while it runs: no heap grows with the input
        if d is None or d.item is not item:
            d = _Digests(item, item.prompt, self._identity_json)
        self._drop_user(d.claim_key, id(item))

    def _digests_of(self, item: Item) -> _Digests:
        d = self._digests.get(id(item))
        if d is None or d.item is not item:  # (an id is reused only after its item is gone)
            d = self._digests[id(item)] = _Digests(item, item.prompt, self._identity_json)
            if len(self._digests) > _ITEM_CACHE:
                self._digests.popitem(last=False)
        return d

    def _drop_user(self, key: str, user: int) -> None:
        claim = self._claims.get(key)
        if claim is None:
            return
        claim.users.discard(user)
        if not claim.users:
            del self._claims[key]
            if not claim.future.done():  # still waiting for another run: withdraw the request
                claim.future.cancel()
                if claim.request is not None:
                    claim.request.cancel()
            self.store.release([key])

    # ------------------------------------------------------------------ internals

    def _claim_of(self, d: _Digests) -> _PromptClaim:
        """This run's claim on ``d``'s prompt, asked of the store if there is none."""
        claim = self._claims.get(d.claim_key)
        if claim is None:
            loop = asyncio.get_running_loop()
            claim = _PromptClaim(d.claim_key, loop.create_future())
            claim.request = self.store.claim(d.claim_key, d.prompt_hash)  # raises StoreError if closed
            self._claims[d.claim_key] = claim
            self._bridge(claim, loop)
        return claim

    async def _prompt_claim(self, d: _Digests, user: int) -> _PromptClaim:
        claim = self._claim_of(d)
        claim.users.add(user)
        if not claim.future.done():
            await asyncio.shield(claim.future)
        if claim.future.cancelled():
            raise StoreError(f"the claim on a prompt in {self.store.path} was given back while waiting for it")
        exc = claim.future.exception()
        if exc is not None:
            raise exc
        return claim

    def _bridge(self, claim: _PromptClaim, loop: asyncio.AbstractEventLoop) -> None:
        """Resolve ``claim`` once the store's future is set (in the writer thread): the claims
        the writer resolves in one cycle wake the event loop once."""

        def done(_: concurrent.futures.Future) -> None:
            self._resolved.append(claim)
            if not self._drain_scheduled:
                self._drain_scheduled = True
                with contextlib.suppress(RuntimeError):  # the run is over and its loop closed: nobody waits
                    loop.call_soon_threadsafe(self._drain)

        assert claim.request is not None
        claim.request.add_done_callback(done)

    def _drain(self) -> None:
        self._drain_scheduled = False  # before draining: one appended meanwhile schedules another drain
        while self._resolved:
            self._granted(self._resolved.popleft())

    def _granted(self, claim: _PromptClaim) -> None:
        cf, claim.request = claim.request, None
        assert cf is not None
        if claim.future.done():  # given back meanwhile (done() of every user): return it at once
            if not cf.cancelled() and cf.exception() is None:
                self.store.release([claim.key])
            return
        if cf.cancelled():
            claim.future.cancel()
        elif (exc := cf.exception()) is not None:
            self._claims.pop(claim.key, None)
            claim.future.set_exception(exc)
        else:
            claim.stored.update(cf.result())
            claim.future.set_result(None)
            claim.granted = True

    def _let_go(self, key: str) -> None:
        f = self._inflight.pop(key, None)
        if f is not None and not f.done():
            f.set_result(None)
