"""Compare a test run's skips with the documented expected skips; exit 1 on any difference.

Usage: python .ci/check_skips.py OUTCOMES EXPECTED [--partial]

OUTCOMES is the JSON-lines file the plugin in tests/conftest.py writes when
``TOURNEY_SKIP_REPORT`` is set (one ``{"nodeid", "outcome", "reason"}`` per test, and per
module skipped at collection). EXPECTED (``.ci/expected-skips.txt``) lists one node id per
line, ``#`` and what follows it being the reason; blank lines and comment lines are ignored.

Differences reported:
* a skip that is not listed (a real component went missing, or a new skip was added
  without documenting it);
* a listed test that ran instead of skipping (the list is stale: remove the line);
* a listed test that was not collected at all (renamed or removed: update the list), except
  with ``--partial`` (a run restricted by pytest arguments).

Standard library only: it runs with the venv's interpreter and nothing else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_expected(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, _, why = line.partition("#")
        nodeid = nodeid.strip()
        if not why.strip():
            raise SystemExit(f"{path}:{n}: every expected skip needs a reason after '#': {raw!r}")
        if nodeid in out:
            raise SystemExit(f"{path}:{n}: {nodeid} is listed twice")
        out[nodeid] = why.strip()
    return out


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--partial"]
    partial = len(args) != len(argv)
    if len(args) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    outcomes_path, expected_path = Path(args[0]), Path(args[1])
    if not outcomes_path.is_file():
        print(f"skip check: no outcome report at {outcomes_path} (did pytest start?)")
        return 1
    outcomes = {}
    for line in outcomes_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            outcomes[rec["nodeid"]] = rec
    expected = read_expected(expected_path)

    skipped = {k: r for k, r in outcomes.items() if r["outcome"] == "skipped"}
    problems: list[str] = []
    for nodeid, rec in sorted(skipped.items()):
        if nodeid not in expected:
            problems.append(f"unexpected skip: {nodeid}: {rec['reason']}")
    for nodeid in sorted(expected):
        rec = outcomes.get(nodeid)
        if rec is None:
            if not partial:
                problems.append(f"expected skip not collected (renamed or removed? update {expected_path}): {nodeid}")
        elif rec["outcome"] != "skipped":
            problems.append(f"expected skip {rec['outcome']} instead (remove it from {expected_path}): {nodeid}")
    if problems:
        print(f"skip check FAILED ({len(skipped)} skipped, {len(expected)} expected in {expected_path}):")
        for p in problems:
            print(f"  {p}")
        return 1
    ran = "" if not partial else " (partial run: tests not collected are not checked)"
    print(f"skip check: {len(skipped)} skipped, all listed in {expected_path}{ran}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
