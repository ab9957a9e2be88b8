"""Where packaged data lives: `grammar/` and `scenarios/`, in a wheel or in a source checkout.

A wheel carries them under `nimbus_scenarios/_data/` (see pyproject's force-include); an editable
install or a checkout reads them from the repository root, so both find the same files.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["data_path"]

_PACKAGE = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """The directory `name` (`grammar` or `scenarios`) of the installed package or checkout."""
    packaged = _PACKAGE / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name
