# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's DOCUMENTATION, EXAMPLES and RETURN is YAML (a ': ' in a sentence breaks it), checked in the unit
lane so the mistake shows in seconds instead of at the end of a sanity run."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[4] / "plugins" / "modules").glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("block", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_module_blocks_are_yaml(name: str, block: str) -> None:
    module = importlib.import_module("ansible_collections.userservice.deploy.plugins.modules." + name)
    text = getattr(module, block)
    assert yaml.safe_load(text) is not None, "%s.%s is empty" % (name, block)
