# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each option group has one argspec and one doc fragment; they must say the same thing."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import yaml

from ansible_collections.userservice.deploy.plugins.doc_fragments import analysis as analysis_doc
from ansible_collections.userservice.deploy.plugins.doc_fragments import auth as auth_doc
from ansible_collections.userservice.deploy.plugins.doc_fragments import health as health_doc
from ansible_collections.userservice.deploy.plugins.doc_fragments import lock as lock_doc
from ansible_collections.userservice.deploy.plugins.module_utils.analysis import ANALYSIS_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.health import HEALTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC

PAIRS = [
    pytest.param(auth_doc, AUTH_ARG_SPEC, id="auth"),
    pytest.param(health_doc, HEALTH_ARG_SPEC, id="health"),
    pytest.param(analysis_doc, ANALYSIS_ARG_SPEC, id="analysis"),
    pytest.param(lock_doc, LOCK_ARG_SPEC, id="lock"),
]


def differences(doc: Dict[str, Any], spec: Dict[str, Any], where: str) -> List[str]:
    problems = []
    for name in sorted(set(doc) | set(spec)):
        path = "%s.%s" % (where, name) if where else name
        if name not in doc:
            problems.append("%s: in argspec, not documented" % path)
            continue
        if name not in spec:
            problems.append("%s: documented, not in argspec" % path)
            continue
        d, s = doc[name], spec[name]
        description = d.get("description")
        lines = description if isinstance(description, list) else [description]
        if not description or not all(isinstance(line, str) and line for line in lines):
            problems.append("%s: description must be text (a ': ' in plain YAML makes a mapping)" % path)
        checks = {
            "type": (d.get("type", "str"), s.get("type", "str")),
            "default": (d.get("default"), s.get("default")),
            "choices": (d.get("choices"), s.get("choices")),
            "aliases": (d.get("aliases"), s.get("aliases")),
            "elements": (d.get("elements"), s.get("elements")),
            "required": (bool(d.get("required")), bool(s.get("required"))),
        }
        for key, (documented, coded) in checks.items():
            if documented != coded:
                problems.append("%s: %s documented %r, argspec %r" % (path, key, documented, coded))
        problems += differences(d.get("suboptions") or {}, s.get("options") or {}, path)
    return problems


@pytest.mark.parametrize("fragment, spec", PAIRS)
def test_fragment_matches_argspec(fragment: Any, spec: Dict[str, Any]) -> None:
    doc = yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert differences(doc, spec, "") == []


def test_comparison_catches_drift() -> None:
    doc = {
        "a": {"description": "x", "type": "int", "default": 1},
        "b": {"description": "y"},
        "d": {"description": [{"Token C(Authorization": "Bearer)"}]},
    }
    spec = {"a": {"type": "int", "default": 2}, "c": {}, "d": {}}
    assert differences(doc, spec, "") == [
        "a: default documented 1, argspec 2",
        "b: documented, not in argspec",
        "c: in argspec, not documented",
        "d: description must be text (a ': ' in plain YAML makes a mapping)",
    ]


def test_secrets_are_no_log() -> None:
    assert AUTH_ARG_SPEC["api_key"]["no_log"] and AUTH_ARG_SPEC["password"]["no_log"]
    prometheus = ANALYSIS_ARG_SPEC["analysis"]["options"]["prometheus"]["options"]
    assert prometheus["bearer_token"]["no_log"]
