"""`tourney rank` end to end: bad input gets a clear error and nothing else is lost."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tourney.cli import main

from .conftest import ROOT, read_jsonl, write_jsonl

GOOD = {"prompt": "q", "responses": ["a", "b", "c"]}
EXAMPLE = ROOT / "tourney" / "data" / "example.jsonl"


def rank(tmp_path, rows, *args):
    inp = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    code = main(["rank", str(inp), "--out", str(out), "--no-progress", "--quiet", *args])
    return code, (read_jsonl(out) if out.exists() else None)


def test_bad_lines_fail_alone_and_exit_nonzero(tmp_path, capsys):
    rows = [
        GOOD,
        "{not json",
        {"responses": ["a"]},
        {"prompt": "q", "responses": []},
        {"prompt": "q", "responses": ["a", 3]},
        {"prompt": "q", "responses": ["a", "a"]},
        {"id": "last", **GOOD},
    ]
    code, out = rank(tmp_path, rows)
    assert code == 1
    assert [o["status"] for o in out] == ["ok", "failed", "failed", "failed", "failed", "ok", "ok"]
    errs = [o.get("error", "") for o in out]
    assert "line 2: malformed JSON" in errs[1]
    assert "line 3: missing 'prompt'" in errs[2]
    assert "line 4: 'responses' must hold at least 1" in errs[3]
    assert "line 5: response 1 is a int" in errs[4]
    # identical responses are judged once and share their rank
    assert out[5]["duplicates"] == [[0, 1]] and out[5]["ranking"] == [0, 1] and out[5]["comparisons"] == 0
    assert out[6]["id"] == "last" and out[6]["best_response"] in GOOD["responses"]
    # a failed line keeps its own id when it has one, its position when it has none, null when unreadable
    assert [o["id"] for o in out[:5]] == ["0", None, "2", "3", "4"]
    stderr = capsys.readouterr().err
    assert stderr.count("tourney: failed: ") == 4
    code, out = rank(tmp_path, rows, "--duplicates", "error")
    assert out[5]["status"] == "failed" and "line 6: responses 0 and 1 are identical" in out[5]["error"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--judge", "gpt9"], "unknown judge 'gpt9'; known: openai, replay, simulated, vllm"),
        (["--strategy", "bracket"], "unknown strategy 'bracket'; known: "),
        (["--strategy", "knockout:votes=0"], "votes must be an integer >= 1"),
        (["--judge", "replay:/nonexistent.jsonl"], "cannot read replay file"),
    ],
)
def test_unknown_components_are_usage_errors(tmp_path, capsys, args, fragment):
    code, _ = rank(tmp_path, [GOOD], *args)
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_missing_input_file(tmp_path, capsys):
    assert main(["rank", str(tmp_path / "nope.jsonl"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_replay_without_the_record_fails_that_item_only(tmp_path):
    rep = write_jsonl(
        tmp_path / "rep.jsonl",
        [
            {"prompt": "q1", "first": "a", "second": "b", "verdict": "B"},
        ],
    )
    rows = [
        {"id": "ok", "prompt": "q1", "responses": ["a", "b"]},
        {"id": "missing", "prompt": "q2", "responses": ["a", "b"]},
    ]
    # seed chosen so that q1's single match shows "a" first, as recorded
    for seed in range(20):
        # one judgement of two fails: the run's health check (exit 3) is not what this test is about
        code, out = rank(tmp_path, rows, "--judge", f"replay:{rep}", "--seed", str(seed), "--max-failure-rate", "1")
        if out[0]["status"] == "ok":
            break
    assert code == 1
    assert out[0]["status"] == "ok" and out[0]["best_response"] == "b"
    assert out[1]["status"] == "partial" and "no record for prompt missing" in out[1]["error"]


def test_n1_is_not_judged_and_n2_is_one_match(tmp_path):
    code, out = rank(tmp_path, [{"prompt": "q", "responses": ["only"]}, {"prompt": "q", "responses": ["x", "y"]}])
    assert code == 0
    assert out[0]["best_response"] == "only" and out[0]["comparisons"] == 0 and out[0]["samples"] == 0
    assert out[1]["comparisons"] == 1


def test_same_seed_same_file_and_meta_records_the_command(tmp_path):
    rows = [{"prompt": f"q{i}", "responses": [f"r{k}" for k in range(7)]} for i in range(10)]
    rank(tmp_path, rows, "--seed", "5")
    a = (tmp_path / "out.jsonl").read_bytes()
    rank(tmp_path, rows, "--seed", "5", "--concurrency", "1")
    assert (tmp_path / "out.jsonl").read_bytes() == a
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["seed"] == 5 and "--concurrency 1" in meta["command"] and meta["version"]


def test_console_script_runs_the_bundled_example():
    """The README's first command: installed entry point, bundled example, embedded default judge."""
    # the script installed beside THIS interpreter (the venv's bin/), never one found on PATH:
    # a machine where the project was also installed elsewhere must not hide a broken install
    script = Path(sys.executable).parent / ("tourney.exe" if os.name == "nt" else "tourney")
    assert script.is_file(), f"console script {script} missing: is the project installed in this environment?"
    out = subprocess.run([str(script), "rank", "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == 6 and all(x["status"] == "ok" for x in lines)
    assert "ranked 6/6 prompts" in out.stderr


def test_python_m_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "tourney", "rank", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--judge" in out.stdout and "examples:" in out.stdout


def test_old_max_tokens_flag_is_a_usage_error_naming_the_new_ones(tmp_path, capsys):
    """--max-tokens was the run-wide budget and read like the per-sample limit: it is refused,
    never silently taken for either."""
    for command in (["rank", str(EXAMPLE)], ["mine-pairs", str(EXAMPLE), "--out", str(tmp_path / "p.jsonl")]):
        with pytest.raises(SystemExit) as exc:
            main([*command, "--max-tokens", "1000", "--no-progress"])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--max-tokens was renamed" in err and "--token-budget" in err and "--judge-opt max_tokens" in err
    assert not (tmp_path / "p.jsonl").exists()


def test_token_budget_stops_the_run_early(tmp_path):
    rows = [{"prompt": f"q{i}", "responses": [f"r{k}" for k in range(8)]} for i in range(4)]
    code, full = rank(tmp_path, rows, "--concurrency", "1")
    assert code == 0 and not any(o["budget_limited"] for o in full)
    used = sum(o["tokens"]["prompt"] + o["tokens"]["completion"] for o in full)
    code, cut = rank(tmp_path, rows, "--concurrency", "1", "--token-budget", str(used // 4))
    assert code == 0 and any(o["budget_limited"] for o in cut)
    assert sum(o["comparisons"] for o in cut) < sum(o["comparisons"] for o in full)


def test_every_subcommand_has_help_with_a_description(capsys):
    from tourney.cli import COMMANDS

    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: tourney {name}") and "-h, --help" in out


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(x for x in (base, node.module) if x)
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def test_only_the_cli_package_parses_arguments_and_its_subcommands_do_not_import_each_other():
    """The import graph: no arrow from the engine to the front end, no argparse outside it, and
    no subcommand module importing another one (mine-pairs once imported the rank module back)."""
    cli = ROOT / "tourney" / "cli"
    subcommands = {"rank", "mine", "rate", "simulate", "store", "data", "catalog", "explain", "plot"}
    for path in sorted((ROOT / "tourney").rglob("*.py")):
        names = _imports(path)
        if cli in path.parents:
            if path.stem in subcommands:
                bad = {n for n in names if n.split(".")[:3] in (["tourney", "cli", s] for s in subcommands)}
                assert not bad, f"{path.relative_to(ROOT)} imports another subcommand module: {sorted(bad)}"
            continue
        if path == ROOT / "tourney" / "__main__.py":  # `python -m tourney`: the command line's door
            continue
        assert "argparse" not in names, f"{path.relative_to(ROOT)} imports argparse"
        assert not any(n == "tourney.cli" or n.startswith("tourney.cli.") for n in names), (
            f"{path.relative_to(ROOT)} imports the command line"
        )


def test_the_runner_called_with_keywords_writes_what_the_command_line_writes(tmp_path):
    from tourney.items import dumps
    from tourney.registry import Spec
    from tourney.runner import rank_file

    out = tmp_path / "cli.jsonl"
    assert (
        main(
            [
                "rank",
                str(EXAMPLE),
                "--out",
                str(out),
                "--no-progress",
                "--quiet",
                "--seed",
                "4",
                "--strategy",
                "swiss",
                "--judge-opt",
                "noise=1.0",
                "--no-store",
            ]
        )
        == 0
    )
    lines: list[str] = []
    report = rank_file(
        EXAMPLE,
        lambda item, res: lines.append(dumps(res) + "\n"),
        judge=Spec("simulated", None, {"noise": 1.0}),
        strategy=Spec("swiss"),
        seed=4,
        meta_path=tmp_path / "api.meta.json",
        command="from python",
    )
    assert "".join(lines) == out.read_text(encoding="utf-8")
    assert report.ok and report.stats["prompts"] == 6 and report.store is None
    meta = json.loads((tmp_path / "api.meta.json").read_text())
    assert meta["seed"] == 4 and meta["command"] == "from python" and meta["judge"]["options"] == {"noise": 1.0}


def test_ray_liveness_flags_are_checked_before_any_cluster_starts(tmp_path, capsys):
    write_jsonl(tmp_path / "in.jsonl", [GOOD])
    # a Ray-only flag with the local executor is refused like --replicas
    assert main(["rank", str(tmp_path / "in.jsonl"), "--no-store", "--replica-timeout", "5"]) == 2
    assert "--replica-timeout needs --executor ray" in capsys.readouterr().err
    # a timeout under two heartbeats could retire a healthy replica: refused, naming both flags
    code = main(
        [
            "rank",
            str(tmp_path / "in.jsonl"),
            "--no-store",
            "--executor",
            "ray",
            "--heartbeat",
            "1",
            "--replica-timeout",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--replica-timeout (1 s) must be at least twice --heartbeat (1 s)" in err
    assert main(["rank", str(tmp_path / "in.jsonl"), "--no-store", "--executor", "ray", "--call-timeout", "-3"]) == 2
    assert "--call-timeout must be a number of seconds >= 0" in capsys.readouterr().err


def test_a_command_switches_threads_every_millisecond(tmp_path):
    # the store's writer thread gets the GIL back within 1 ms of its writer process's answer
    # (with CPython's 5 ms the writer fell behind an instant judge: README, store at scale)
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        inp = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "prompt": "q", "responses": ["x", "y"]}])
        assert main(["rank", str(inp), "--out", str(tmp_path / "out.jsonl"), "--quiet", "--no-progress"]) == 0
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(before)
