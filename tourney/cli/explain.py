"""``tourney explain``: one prompt's tournament as text: who met whom, the votes, the judge's words.

    tourney explain OUT.jsonl --id Q [--match I,J] [--store PATH] [--input INPUT.jsonl] [--width N]

Reads the prompt's line of a ``tourney rank`` output and shows:

* the run (judge, strategy, seed: from the line, and the command from ``OUT.jsonl.meta.json``);
* the candidates best first: rank, index, score, uncertainty, the start of each response
  (responses come from the run's input, found through the meta file or ``--input``);
* the bracket of a knockout (round by round, who beat whom with the votes, byes, coin flips),
  the rounds of a Swiss system, or, for every other strategy, the schedule: every pair that
  was judged, with its votes in each presentation order;
* the strategy's own summary (P(best) of ``adaptive``, a Bradley-Terry position estimate, ...);
* with ``--match I,J``: that pair's matches in both orders, and for each stored judge sample
  its outcome, verdict text and the judge's full reasoning, read from the judgement store.

The store is ``--store PATH``, else the one the meta file names, else ``OUT.jsonl.judgements.sqlite``
(``tourney rank --out OUT.jsonl`` writes it there); it is opened read-only. When there is no
store, or the match is not in it (a run with ``--no-store``, another judge), the text says so.
Votes are ``[first-shown wins, second-shown wins, ties, abstentions, errors]`` as in the output
line's ``matches``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import StoreError
from ..outputs import find_item, find_result, read_meta, resolve_path

__all__ = ["add_parser", "cmd_explain", "explain"]

_EPILOG = """\
examples:
  tourney rank --out out.jsonl                        the bundled example, with its judgement store
  tourney explain out.jsonl --id capital-au           bracket, votes, scores of one prompt
  tourney explain out.jsonl --id capital-au --match 2,0   that match's votes and the judge's reasoning
  tourney explain out.jsonl --id q7 --store other.sqlite --input prompts.jsonl
"""

#: characters of a response shown in the candidate table
_RESPONSE_CHARS = 70


def _store_rows(store: str, prompt_id: str) -> list[dict[str, Any]]:
    from ..store import JudgementStore

    with JudgementStore(store, readonly=True, check_on_open=False) as db:
        return list(db.export(prompt_id, include_errors=True))


def _parse_match(text: str) -> tuple[int, int]:
    try:
        i, j = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--match takes two candidate indices I,J (e.g. 2,0), got {text!r}") from None
    if i == j or i < 0 or j < 0:
        raise argparse.ArgumentTypeError(f"--match takes two different candidate indices >= 0, got {text!r}")
    return i, j


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _votes(v: Sequence[Any]) -> str:
    w1, w2, t, a, e = (int(x) for x in v)
    extra = "".join(f", {n} {what}" for n, what in ((t, "tie"), (a, "abstained"), (e, "error")) if n)
    return f"{w1}-{w2}{extra}"


def _one_line(text: Any, limit: int) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _pairs(result: Mapping[str, Any]) -> dict[frozenset[int], list[dict[str, Any]]]:
    """The output line's match records grouped by unordered pair, in first-seen order."""
    out: dict[frozenset[int], list[dict[str, Any]]] = {}
    for m in result.get("matches") or []:
        out.setdefault(frozenset((int(m["first"]), int(m["second"]))), []).append(m)
    return out


def _order_votes(records: list[dict[str, Any]], a: int, b: int) -> tuple[list[int], list[int]]:
    """Summed votes of the pair with ``a`` shown first and with ``b`` shown first."""
    ab, ba = [0] * 5, [0] * 5
    for m in records:
        tgt = ab if int(m["first"]) == a else ba
        for k, v in enumerate(m["votes"]):
            tgt[k] += int(v)
    return ab, ba


def _bracket_lines(result: Mapping[str, Any]) -> list[str]:
    from ..plotting import bracket_rounds

    rounds, roots = bracket_rounds(result)
    lines = []
    entered: set[int] = set()
    n_rounds = len(rounds)
    for r, matches in enumerate(rounds, 1):
        name = "final" if r == n_rounds and len(roots) == 1 else f"round {r}"
        lines.append(f"  {name}")
        for m in matches:
            byes = [p for p, f in zip(m.players, m.feeders) if f is None and r > 1 and p not in entered]
            entered.update(m.players)
            a, b = m.players
            va, vb = m.votes
            how = "coin flip (the judge did not decide)" if m.coin_flip else f"votes {va:g}-{vb:g}"
            note = f"  [{', '.join(f'#{p} had a bye' for p in byes)}]" if byes else ""
            lines.append(f"    #{m.winner} beat #{m.loser}   (#{a} vs #{b}: {how}){note}")
    champions = ", ".join(f"#{m.winner}" for m in roots)
    lines.append(f"  winner: {champions}" if len(roots) == 1 else f"  unfinished (budget): leaders {champions}")
    return lines


def _swiss_lines(result: Mapping[str, Any]) -> list[str]:
    lines = []
    for rnd in result["info"]["pairings"]:
        parts = []
        for (a, b), res in zip(rnd.get("pairs", []), rnd.get("results", [])):
            parts.append(
                f"#{a} vs #{b} -> "
                + ({1.0: f"#{a}", 0.0: f"#{b}"}.get(float(res), "draw") if res is not None else "no result")
            )
        bye = f"; bye #{rnd['bye']}" if rnd.get("bye") is not None else ""
        lines.append(f"  round {rnd.get('round')}: " + "; ".join(parts) + bye)
    return lines


def _schedule_lines(result: Mapping[str, Any]) -> list[str]:
    lines = []
    for pair, records in _pairs(result).items():
        a, b = sorted(pair)
        ab, ba = _order_votes(records, a, b)
        parts = []
        if any(ab) or any(int(m["first"]) == a for m in records):
            parts.append(f"#{a} first: {_votes(ab)}")
        if any(ba) or any(int(m["first"]) == b for m in records):
            parts.append(f"#{b} first: {_votes(ba)}")
        wins_a = ab[0] + ba[1]
        wins_b = ab[1] + ba[0]
        lead = f"#{a} {wins_a}-{wins_b} #{b}"
        lines.append(f"  #{a} vs #{b}: {lead}   ({'; '.join(parts)})")
    return lines


def _strategy_summary(result: Mapping[str, Any]) -> list[str]:
    info = result.get("info") or {}
    out = []
    if "p_best" in info:
        out.append(
            f"  P(best is #{result.get('best')}) = {_fmt(info['p_best'])}"
            + (f"; stopped: {info['stopped']}" if info.get("stopped") else "")
            + (f"; {info['requests']} of a budget of {info['budget']} requests" if "budget" in info else "")
        )
    pos = info.get("position")
    if isinstance(pos, Mapping) and pos.get("coef") is not None:
        sd = pos.get("se", pos.get("sd"))
        out.append(f"  first-shown advantage: {_fmt(pos['coef'])} log-odds (sd {_fmt(sd)})")
    if info.get("coin_flips"):
        out.append(f"  coin flips: {info['coin_flips']} match(es) the judge did not decide")
    if isinstance(info.get("voting"), Mapping):
        v = info["voting"]
        out.append(f"  voting@{v.get('k')}: {v.get('samples_paid')} samples paid, {v.get('early_stops')} early stops")
    if info.get("ended_early"):
        out.append("  ended early: no rematch-free pairing was left")
    if result.get("budget_limited"):
        out.append("  budget-limited: the ranking is the best so far")
    return out


def _match_lines(
    result: Mapping[str, Any], pair: tuple[int, int], rows: list[dict[str, Any]] | None, store_note: str, width: int
) -> list[str]:
    a, b = pair
    records = _pairs(result).get(frozenset(pair), [])
    lines = [f"match #{a} vs #{b}"]
    if not records:
        lines.append(
            f"  #{a} and #{b} never met in this tournament (pairs that met: "
            + ", ".join(f"{min(p)},{max(p)}" for p in _pairs(result))
            + ")"
        )
        return lines
    ab, ba = _order_votes(records, a, b)
    for first, second, v in ((a, b, ab), (b, a, ba)):
        shown = [m for m in records if int(m["first"]) == first]
        if not shown:
            lines.append(f"  #{first} shown first: not judged in this order")
            continue
        outcomes = ", ".join(str(m.get("outcome")) for m in shown)
        lines.append(
            f"  #{first} shown first: {len(shown)} request(s), outcome {outcomes}; votes {_votes(v)} "
            f"(#{first} won {v[0]}, #{second} won {v[1]})"
        )
    if rows is None:
        lines.append(f"  the judge's reasoning: {store_note}")
        return lines
    mine = [r for r in rows if {r.get("first_index"), r.get("second_index")} == {a, b}]
    if not mine:
        lines.append(
            f"  the judge's reasoning: this match is not in the store {store_note} (it holds "
            f"{len(rows)} judgement(s) of this prompt; a run with another judge or --no-store?)"
        )
        return lines
    judges = {json.dumps(r.get("judge"), sort_keys=True) for r in mine}
    mine.sort(key=lambda r: (r["first_index"] != a, r["sample"]))
    lines.append(
        f"  {len(mine)} stored judge sample(s) in {store_note}"
        + (f", from {len(judges)} judges" if len(judges) > 1 else "")
    )
    wrap = textwrap.TextWrapper(
        width=width, initial_indent="      ", subsequent_indent="      ", replace_whitespace=False, drop_whitespace=True
    )
    for r in mine:
        fi, si = r["first_index"], r["second_index"]
        outcome = str(r.get("outcome"))
        winner = {"A": f"#{fi} (shown first)", "B": f"#{si} (shown second)"}.get(outcome, outcome)
        head = f"  sample {r['sample']}, #{fi} shown first: {r.get('outcome')} -> {winner}"
        if len(judges) > 1:
            head += f"  [judge {(r.get('judge') or {}).get('name')}]"
        lines.append(head)
        if r.get("error"):
            lines.append(f"    error: {r['error']}")
        lines.append(
            f"    verdict text: {r.get('verdict_text')!r}"
            if r.get("verdict_text") is not None
            else "    verdict text: (none)"
        )
        reasoning = r.get("reasoning")
        if reasoning:
            lines.append("    reasoning:")
            for para in str(reasoning).splitlines() or [""]:
                lines.extend(wrap.wrap(para) or [""])
        else:
            lines.append("    reasoning: (none recorded)")
    return lines


def explain(
    result: Mapping[str, Any],
    *,
    item: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
    store_note: str = "",
    match: tuple[int, int] | None = None,
    width: int = 100,
) -> str:
    """The text view of one result line (see the module docstring). ``item``: the input line
    (prompt, responses); ``rows``: the prompt's stored judgements (None: no store, and
    ``store_note`` says why); ``match``: a pair to show in full."""
    out: list[str] = []
    pid = result.get("id")
    strategy = result.get("strategy") or {}
    judge = result.get("judge") or {}

    def spec(s: dict[str, Any]) -> str:
        options = s.get("options")
        if not options:
            return str(s.get("name", "?"))
        opts = ",".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in options.items())
        return f"{s.get('name', '?')}:{opts}"

    out.append(
        f"prompt {pid}: "
        + (
            _one_line(item["prompt"] if isinstance(item.get("prompt"), str) else json.dumps(item["prompt"]), width - 12)
            if item
            else "(prompt text: input not found; pass --input)"
        )
    )
    out.append(
        f"  status {result.get('status')}; judge {spec(judge)}; strategy {spec(strategy)}; seed {result.get('seed')}"
    )
    if meta and meta.get("command"):
        out.append(f"  run: {meta['command']}")
    out.append(
        f"  {result.get('comparisons')} comparisons, {result.get('samples')} judge samples "
        f"({result.get('abstentions', 0)} abstained, {result.get('ties', 0)} ties, {result.get('errors', 0)} errors)"
    )
    if result.get("status") == "failed":
        out.append("  failed: " + "; ".join(result.get("messages") or []))
        return "\n".join(out) + "\n"
    for msg in result.get("messages") or []:
        out.append(f"  note: {msg}")
    responses = list(item.get("responses") or []) if item else []
    scores = result.get("scores") or []
    unc = result.get("uncertainty") or []
    out += [
        "",
        f"candidates, best first (score: {result.get('scale')})",
        "  rank  cand    score  uncertainty  response",
    ]
    for rank, i in enumerate(result.get("ranking") or [], 1):
        text = _one_line(responses[i], _RESPONSE_CHARS) if i < len(responses) else ""
        best = "   <- best" if i == result.get("best") else ""
        out.append(
            f"  {rank:>4}  #{i:<4} {_fmt(scores[i] if i < len(scores) else None):>7}  "
            f"{_fmt(unc[i] if i < len(unc) else None):>11}  {text}{best}"
        )
    info = result.get("info") or {}
    out.append("")
    final: tuple[int, int] | None = None
    if isinstance(info.get("matches"), list) and info["matches"] and "winner" in info["matches"][0]:
        final = tuple(max(info["matches"], key=lambda m: m["round"])["players"])
        out.append(f"bracket ({strategy.get('name')}, {len({m['round'] for m in info['matches']})} rounds)")
        out += _bracket_lines(result)
    elif isinstance(info.get("pairings"), list):
        out.append(f"rounds ({strategy.get('name')})")
        out += _swiss_lines(result)
    else:
        out.append(
            f"schedule ({strategy.get('name')}: the pairs judged, in the output's match order; wins over "
            "both orders, then the votes per order: first-shown won - second-shown won)"
        )
        out += _schedule_lines(result)
    summary = _strategy_summary(result)
    if summary:
        out += ["", "strategy summary"] + summary
    out.append("")
    if match is not None:
        out += _match_lines(result, match, rows, store_note, width)
    else:
        pairs = list(_pairs(result))
        if final is not None:  # the final of a bracket, else the last pair listed
            pairs.append(frozenset(final))
        if pairs:
            a, b = sorted(pairs[-1])
            if rows is not None:
                out.append(
                    f"the judge's reasoning for a match: tourney explain ... --id {pid} --match {a},{b}"
                    f"   (store: {store_note})"
                )
            else:
                out.append(f"the judge's reasoning: {store_note}")
    return "\n".join(out).rstrip("\n") + "\n"


def add_parser(sub: Any) -> None:
    """Add ``tourney explain`` to the command line."""
    p = sub.add_parser(
        "explain",
        help="show one prompt's tournament: bracket or schedule, votes, scores, the judge's reasoning",
        description="A text view of one prompt's tournament from a tourney rank output: the bracket "
        "(knockout) or the schedule, each match's votes in both orders, scores and uncertainty, the best "
        "pick, and with --match the judge's reasoning and verdict text from the judgement store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("output", help="a tourney rank output file (OUT.jsonl)")
    p.add_argument("--id", required=True, dest="prompt_id", help="the prompt's id")
    p.add_argument(
        "--match",
        type=_parse_match,
        default=None,
        metavar="I,J",
        help="show the matches of candidates I and J in both orders, with the judge's reasoning",
    )
    p.add_argument(
        "--store",
        default=None,
        help="judgement store (default: the one the run's meta file names, else OUT.jsonl.judgements.sqlite)",
    )
    p.add_argument(
        "--input",
        default=None,
        help="the run's input file, for the prompt and response texts (default: from the meta file)",
    )
    p.add_argument("--width", type=int, default=100, help="wrap the judge's reasoning at this width (default 100)")


def cmd_explain(args: argparse.Namespace, argv: Sequence[str]) -> int:
    result = find_result(args.output, args.prompt_id)
    meta = read_meta(args.output)
    input_path = args.input or resolve_path(meta.get("input") if meta else None, meta)
    item = find_item(input_path, args.prompt_id, None) if input_path else None
    if args.input and item is None:
        print(f"tourney explain: prompt {args.prompt_id!r} is not in {args.input}", file=sys.stderr)
    store = args.store or resolve_path(meta.get("store") if meta else None, meta) or f"{args.output}.judgements.sqlite"
    rows: list[dict[str, Any]] | None
    if args.store and not os.path.exists(args.store):
        raise FileNotFoundError(f"judgement store {args.store} does not exist")
    if not os.path.exists(store):
        rows, note = (
            None,
            (
                f"no judgement store at {store} (the run used --no-store, or pass --store PATH), "
                "so the judge's reasoning is not available"
            ),
        )
    else:
        try:
            rows, note = _store_rows(store, args.prompt_id), store
        except StoreError as exc:
            rows, note = None, f"the judgement store {store} cannot be read: {exc}"
    sys.stdout.write(
        explain(result, item=item, meta=meta, rows=rows, store_note=note, match=args.match, width=max(40, args.width))
    )
    return 0
