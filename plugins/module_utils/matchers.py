# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small matchers shared by the health gate, analysis checks and http_check.

A JSON field is addressed with a dotted path (``status``, ``checks.db.ok``,
``items.0.name``) and compared with one operator. No expression language on
purpose: inventory values must never become code.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

CONDITIONS = ["==", "!=", "<", "<=", ">", ">=", "in"]

_MISSING = object()


def extract_json_path(document: Any, path: str) -> Any:
    """The value at ``path`` or the module-private ``MISSING`` marker."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _as_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _equal(actual: Any, expected: Any) -> bool:
    if actual == expected and type(actual) is type(expected):
        return True
    left, right = _as_number(actual), _as_number(expected)
    if left is not None and right is not None:
        return left == right
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    return actual == expected or str(actual) == str(expected)


def compare(actual: Any, operator: str, expected: Any) -> Tuple[bool, str]:
    """``(holds, explanation)`` for ``actual <operator> expected``."""
    if operator == "==":
        ok = _equal(actual, expected)
    elif operator == "!=":
        ok = not _equal(actual, expected)
    elif operator == "in":
        options: List[Any] = expected if isinstance(expected, list) else [expected]
        ok = any(_equal(actual, option) for option in options)
    elif operator in ("<", "<=", ">", ">="):
        left, right = _as_number(actual), _as_number(expected)
        if left is None or right is None or math.isnan(left) or math.isnan(right):
            return False, "%r %s %r: not comparable as numbers" % (actual, operator, expected)
        ok = {
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[operator]
    else:
        return False, "unknown condition %r" % operator
    return ok, "%r %s %r is %s" % (actual, operator, expected, "true" if ok else "false")


def status_ok(status: int, expected: Optional[List[int]]) -> bool:
    """Expected statuses, or any 2xx when none are given."""
    if expected:
        return status in expected
    return 200 <= status < 300


def check_bounds(value: float, minimum: Optional[float], maximum: Optional[float]) -> Optional[str]:
    """Why ``value`` is outside ``[minimum, maximum]``, or None when it is within.

    Both bounds are inclusive: a value equal to ``maximum`` is within.
    """
    if maximum is not None and value > maximum:
        return "%g > max %g" % (value, maximum)
    if minimum is not None and value < minimum:
        return "%g < min %g" % (value, minimum)
    return None
