"""The engine against its peers: now `bench/peers.py`, which this runs (kept so that the
commands in old notes and `make bench` still work).

`bench/peers.py` measures ours through the real CLI, Locust FastHttpUser and a bare aiohttp
loop against the same nginx in one run and prints issue 18's acceptance. This script's options
map onto it: `--ladder-duration S` is `--search-duration S`; the rest are the same.

    .venv/bin/python bench/engine.py [--duration 15] [--no-locust] [--million]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers


def translate(argv: list[str]) -> list[str]:
    """This script's options as `bench/peers.py` spells them."""
    out = []
    for arg in argv:
        if arg == "--ladder-duration":
            out.append("--search-duration")
        elif arg.startswith("--ladder-duration="):
            out.append("--search-duration=" + arg.split("=", 1)[1])
        else:
            out.append(arg)
    return out


if __name__ == "__main__":
    print("bench/engine.py is now bench/peers.py; running it", file=sys.stderr)
    sys.exit(peers.main(translate(sys.argv[1:]), prog="bench/peers.py"))
