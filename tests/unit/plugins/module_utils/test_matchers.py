# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.matchers import (
    check_bounds,
    compare,
    extract_json_path,
    is_missing,
    status_ok,
)


def test_json_path() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "d": None}
    assert extract_json_path(doc, "a.b.1.c") == 2
    assert extract_json_path(doc, "a.b.-1.c") == 2
    assert extract_json_path(doc, "d") is None
    assert is_missing(extract_json_path(doc, "a.x"))
    assert is_missing(extract_json_path(doc, "a.b.5"))


@pytest.mark.parametrize(
    "actual, op, expected, holds",
    [
        ("ok", "==", "ok", True),
        (1, "==", "1", True),
        (1.0, "==", 1, True),
        (True, "==", "true", True),
        ("ok", "!=", "ok", False),
        (0.2, "<", 0.5, True),
        ("0.7", ">=", 0.5, True),
        ("abc", "<", 1, False),
        (float("nan"), "<", 1, False),
        ("degraded", "in", ["ok", "degraded"], True),
        ("down", "in", ["ok"], False),
    ],
)
def test_compare(actual: Any, op: str, expected: Any, holds: bool) -> None:
    assert compare(actual, op, expected)[0] is holds


def test_status() -> None:
    assert status_ok(204, None) and not status_ok(301, None)
    assert status_ok(503, [200, 503]) and not status_ok(200, [204])


@pytest.mark.parametrize(
    "value, minimum, maximum, breach",
    [
        (0.05, None, 0.05, None),
        (0.0500001, None, 0.05, "0.0500001 > max 0.05"),
        (2.0, 2.0, None, None),
        (1.5, 2.0, 3.0, "1.5 < min 2"),
        (float("inf"), None, 1.0, "inf > max 1"),
        (5.0, None, None, None),
    ],
)
def test_bounds_are_inclusive(value: float, minimum: Any, maximum: Any, breach: Any) -> None:
    assert check_bounds(value, minimum, maximum) == breach
