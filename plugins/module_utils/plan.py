# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ordered plan of a release: what check mode returns and what diff mode shows.

A module builds the plan from desired-vs-actual comparisons before it writes
anything. In check mode it returns the plan; in a real run it executes the same
steps, so the plan and the run cannot drift apart. ``changed`` is derived from
the plan (some step changes a field), never from "an API call was made".
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

# Steps that do not write to the cluster (gates, waits, analysis).
OBSERVING_ACTIONS = frozenset({"wait", "gate", "analyse", "verify", "pause"})


class FieldChange:
    def __init__(self, path: str, before: Any, after: Any) -> None:
        self.path = path
        self.before = before
        self.after = after

    def as_dict(self) -> Dict[str, Any]:
        return {"field": self.path, "before": self.before, "after": self.after}


class PlanStep:
    def __init__(
        self,
        action: str,
        kind: str,
        name: str,
        *,
        namespace: Optional[str] = None,
        changes: Optional[List[FieldChange]] = None,
        gate: Optional[Dict[str, Any]] = None,
        note: Optional[str] = None,
    ) -> None:
        self.action = action
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.changes = list(changes or [])
        self.gate = gate
        self.note = note

    @property
    def writes(self) -> bool:
        return self.action not in OBSERVING_ACTIONS and bool(self.changes or self.action in ("create", "delete"))

    def as_dict(self, index: int) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "step": index,
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "changes": [change.as_dict() for change in self.changes],
        }
        if self.gate is not None:
            out["gate"] = self.gate
        if self.note:
            out["note"] = self.note
        return out


class Plan:
    """Steps in execution order, plus the before/after view for ``--diff``."""

    def __init__(self) -> None:
        self.steps: List[PlanStep] = []

    def add(self, step: PlanStep) -> PlanStep:
        self.steps.append(step)
        return step

    def change(
        self,
        action: str,
        kind: str,
        name: str,
        namespace: Optional[str],
        fields: Dict[str, Any],
        current: Dict[str, Any],
        note: Optional[str] = None,
    ) -> Optional[PlanStep]:
        """Add a step for the fields whose desired value differs from ``current``; None if none differ."""
        changes = [
            FieldChange(path, current.get(path), value) for path, value in fields.items() if current.get(path) != value
        ]
        if not changes:
            return None
        return self.add(PlanStep(action, kind, name, namespace=namespace, changes=changes, note=note))

    @property
    def changed(self) -> bool:
        return any(step.writes for step in self.steps)

    def as_list(self) -> List[Dict[str, Any]]:
        return [step.as_dict(index) for index, step in enumerate(self.steps, start=1)]

    def diff(self) -> Dict[str, Dict[str, Any]]:
        """``{'before': ..., 'after': ...}`` keyed ``Kind/name`` then field, last value wins.

        Before is the first value a field had, after the last one it gets, so a
        field moved there and back (scale up, then down) shows its net change.
        """
        before: Dict[str, Dict[str, Any]] = {}
        after: Dict[str, Dict[str, Any]] = {}
        for step in self.steps:
            key = "%s/%s" % (step.kind, step.name)
            for change in step.changes:
                before.setdefault(key, {}).setdefault(change.path, change.before)
                after.setdefault(key, {})[change.path] = change.after
        for key in list(before):
            for path in list(before[key]):
                if before[key][path] == after[key][path]:
                    del before[key][path]
                    del after[key][path]
            if not before[key]:
                del before[key]
                del after[key]
        return {"before": before, "after": after}
