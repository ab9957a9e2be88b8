"""Regenerate the golden files of the scenario-language corpora.

Run from anywhere: `.venv/bin/python tests/data/regen.py`. It rewrites

- `valid/<name>.plan.json`: what `nimbus-scenarios plan --json valid/<name>.scn` prints,
- `valid/<name>.warn`: what `validate` prints on stderr for a valid file with warnings (removed
  when there are none),
- `invalid/<name>.err`: what `validate` prints on stderr for an invalid file,

each run with the arguments of `<name>.args` after the file when there is one (`--set`
overrides, one per line),

and the byte-level inputs that are awkward to edit by hand (`BYTE_INPUTS`: a NUL byte, invalid
UTF-8, old Mac `\r` line endings, CRLF, invisible characters). Commands run from the repository
root with paths relative to it, exactly as `tests/language/test_corpus.py` runs them.

The output is only a starting point: every changed golden file must be checked by hand against
the language page (docs: /work/shared/design/scenario-language.md) before it is committed, and
the hand-derived counts in `tests/plan/test_corpus_arithmetic.py` must still hold.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VALID = HERE / "valid"
INVALID = HERE / "invalid"

# Inputs that are not plain text, written here so that they never pass through an editor (which
# would drop a NUL or a bad byte, or rewrite the line endings). Paths are relative to this folder.
_CR_ONLY_VALID = (
    "# Old Mac line endings: a lone CR ends every line.",
    'scenario "cr_only" {',
    '  target "http://svc.example"',
    '  request a = GET "/"',
    '  phase "hold" 10s {',
    "    rate 2/s",
    "    send a",
    "  }",
    '  phase "ramp" 10s {',
    "    ramp 1/s -> 3/s",
    "    send a",
    "  }",
    "}",
)
_CR_ONLY_INVALID = (
    "# Old Mac line endings: the error is on line 7, not line 1.",
    'scenario "x" {',
    '  target "http://svc.example"',
    '  request a = GET "/"',
    '  phase "p" 10s {',
    "    send a",
    "    rate 0/s",
    "  }",
    "}",
)
_CRLF_INVALID = (
    "# Windows line endings: lines and columns as in an LF file.",
    'scenario "x" {',
    '  target "http://svc.example"',
    '  request a = GET "/"',
    '  phase "p" 1m1m {',
    "    rate 1/s",
    "    send a",
    "  }",
    "}",
)
BYTE_INPUTS = {
    "invalid/binary.scn": b'scenario "x" {\n  target "http://svc.example"\x00\n}\n',
    "invalid/invalid_utf8.scn": (
        b'scenario "x" {\n  description "caf\xc3\xa9 ok"\n  target "http://\xff\xfe"\n}\n'
    ),
    # A bad byte after a CR-only line break and wide text: line 3, column in characters.
    "invalid/invalid_utf8_cr.scn": (
        'scenario "x" {\r  description "日本語 ok"\r  target "http://日本\udcff"\r}\r'.encode(
            "utf-8", "surrogateescape"
        )
    ),
    "valid/cr_only.scn": ("\r".join(_CR_ONLY_VALID) + "\r").encode("utf-8"),
    "invalid/cr_only.scn": ("\r".join(_CR_ONLY_INVALID) + "\r").encode("utf-8"),
    "invalid/crlf.scn": ("\r\n".join(_CRLF_INVALID) + "\r\n").encode("utf-8"),
    # Invisible characters an editor may drop or show as a plain space.
    "invalid/hint_zero_width_space.scn": (
        'scenario "x" {\n  request work = GET "/work"\n  phase "p" 1m {\n'
        "    rate\u200b 1/s\n    send work\n  }\n}\n"
    ).encode(),
    "invalid/hint_non_breaking_space.scn": (
        'scenario "x" {\n  request work = GET "/work"\n  phase "p"\u00a01m {\n'
        "    rate 1/s\n    send work\n  }\n}\n"
    ).encode(),
}


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process from the repository root: exit code, stdout, stderr."""
    from nimbus_scenarios.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(previous)
    return code, out.getvalue(), err.getvalue()


def relative(path: Path) -> str:
    """A corpus path as the golden files spell it: relative to the repository root."""
    return path.relative_to(ROOT).as_posix()


def args_of(scn: Path) -> list[str]:
    """The arguments `<name>.args` gives after the file (shell words, `#` lines skipped)."""
    extra = scn.with_suffix(".args")
    if not extra.exists():
        return []
    lines = extra.read_text(encoding="utf-8").splitlines()
    return [word for line in lines if not line.startswith("#") for word in shlex.split(line)]


def regenerate() -> list[str]:
    """Rewrite every golden file; return the problems that need a person (bad exit codes)."""
    problems: list[str] = []
    for name, data in BYTE_INPUTS.items():
        (HERE / name).write_bytes(data)
    for scn in sorted(VALID.glob("*.scn")):
        code, out, _ = run_cli(["plan", "--json", relative(scn), *args_of(scn)])
        if code != 0:
            problems.append(f"{relative(scn)}: plan exited {code}")
            continue
        scn.with_suffix(".plan.json").write_text(out, encoding="utf-8")
        code, _, err = run_cli(["validate", relative(scn), *args_of(scn)])
        if code != 0:
            problems.append(f"{relative(scn)}: validate exited {code}")
        warn = scn.with_suffix(".warn")
        if err:
            warn.write_text(err, encoding="utf-8")
        elif warn.exists():
            warn.unlink()
    for scn in sorted(INVALID.glob("*.scn")):
        code, _, err = run_cli(["validate", relative(scn), *args_of(scn)])
        if code != 2:
            problems.append(f"{relative(scn)}: validate exited {code}, expected 2")
        scn.with_suffix(".err").write_text(err, encoding="utf-8")
    return problems


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    found = regenerate()
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)
