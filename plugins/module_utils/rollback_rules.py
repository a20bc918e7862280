# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a rollback may go, decided from the slots' history alone (no cluster calls).

One decision for every path that moves traffic backwards: ``rollback.yml``, the
monitor's automatic rollback, and ``release_info``'s "what would a rollback do".
The rules: the target is the slot that served before the current one; a slot
that was already rolled back from makes a plain rollback a no-op (never a toggle);
a failed or never-served slot, and a preview waiting for approval, are refused;
``rollback_to`` names a version or revision a slot still holds.
"""

from __future__ import annotations

import json
from typing import Any, Dict, NamedTuple, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import deployment_name
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError, InvalidStateError
from ansible_collections.userservice.deploy.plugins.module_utils.state import SLOTS, other_slot, slot_status


class Rollback(NamedTuple):
    """``target`` to switch to, or ``noop`` saying why nothing needs doing."""

    target: Optional[str]
    noop: Optional[str]


class Where(NamedTuple):
    """What the messages name."""

    namespace: str
    app: str
    service: str


def refusal(state: Dict[str, Any], slot: str, action: str, where: Where) -> InvalidStateError:
    entry = ((state or {}).get("slots") or {}).get(slot) or {}
    status = slot_status(state, slot)
    return InvalidStateError(
        "refused to %s to slot %s: it is %s" % (action, slot, status),
        kind="Deployment",
        namespace=where.namespace,
        name=deployment_name(where.app, slot),
        expected="a slot that served traffic and passed its gates",
        seen="version %s, %s (%s)"
        % (
            entry.get("version"),
            status,
            entry.get("status_reason") or "since %s" % (entry.get("status_at") or entry.get("failed_at")),
        ),
        hint="Release the version you want instead (playbooks/release.yml)",
    )


def choose_rollback(
    state: Optional[Dict[str, Any]],
    selector: Dict[str, str],
    active: Optional[str],
    previous_runs_image: Optional[str],
    wanted: Optional[str],
    where: Where,
    action: str = "roll back",
) -> Rollback:
    """Decide; raises InvalidStateError (refused) or InvalidArgumentError (``rollback_to`` names nothing).

    ``previous_runs_image`` is the image the other slot's Deployment runs now (None: no such Deployment).
    """
    state = state or {}
    if active is None:
        raise InvalidStateError(
            "nothing to %s: the Service selects no slot" % action,
            kind="Service",
            namespace=where.namespace,
            name=where.service,
            seen=json.dumps(selector),
        )
    other = other_slot(active)
    slots = state.get("slots") or {}

    def matches(slot: str) -> bool:
        entry = slots.get(slot) or {}
        return wanted in (entry.get("version"), str(entry.get("revision")))

    if wanted:
        if matches(active):
            return Rollback(None, "version %s already serves traffic from slot %s" % (wanted, active))
        if not matches(other):
            known = ", ".join(
                "slot %s: version %s revision %s"
                % (slot, (slots.get(slot) or {}).get("version"), (slots.get(slot) or {}).get("revision"))
                for slot in SLOTS
                if slots.get(slot)
            )
            raise InvalidArgumentError(
                "rollback_to",
                "the version or revision of a slot (%s)" % (known or "no slot is recorded"),
                wanted,
                hint="Only what a slot still holds can be rolled back to; release an older version instead",
            )
    if state.get("pending_slot") == other:
        raise InvalidStateError(
            "refused to %s: slot %s holds a previewed release waiting for approval" % (action, other),
            kind="Deployment",
            namespace=where.namespace,
            name=deployment_name(where.app, other),
            expected="no pending preview in the slot a rollback would switch to",
            seen="pending version %s" % (slots.get(other) or {}).get("version"),
            hint="Decide on the preview first: playbooks/promote.yml ships it, playbooks/abort.yml removes it",
        )
    if previous_runs_image is None:
        raise InvalidStateError(
            "no previous slot to %s to" % action,
            kind="Deployment",
            namespace=where.namespace,
            name=deployment_name(where.app, other),
            expected="a Deployment from an earlier release",
            seen="none",
        )
    status = slot_status(state, other)
    if status == "rolled_back" and not wanted:
        entry = slots.get(other) or {}
        return Rollback(
            None,
            "slot %s (version %s) was already rolled back from (%s); rolling back again is a no-op; "
            "set rollback_to=%s to return to it on purpose"
            % (other, entry.get("version"), entry.get("status_reason"), entry.get("version")),
        )
    if status not in ("served", "rolled_back"):
        raise refusal(state, other, action, where)
    return Rollback(other, None)
