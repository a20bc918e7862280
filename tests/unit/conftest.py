# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the collection importable as ansible_collections.userservice.deploy.

`make unit` puts build/collections on PYTHONPATH; this lets a bare
`pytest tests/unit` (an editor, a single test) work the same way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
_COLLECTIONS = _REPO / "build" / "collections"


def _collection_importable() -> bool:
    try:
        return importlib.util.find_spec("ansible_collections.userservice.deploy") is not None
    except ModuleNotFoundError:
        return False


def _ensure_collection_importable() -> None:
    if _collection_importable():
        return
    if not (_COLLECTIONS / "ansible_collections" / "userservice" / "deploy").exists():
        raise RuntimeError(f"{_COLLECTIONS} does not hold the collection link: run `make collections-link` first")
    sys.path.insert(0, str(_COLLECTIONS))
    importlib.invalidate_caches()


_ensure_collection_importable()
