#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: Read the release state of an application on Kubernetes
version_added: 0.1.0
description:
  - Reads, and never changes, what the C(bluegreen) module left in a namespace - the active Service's selector,
    the two slot Deployments C(<app>-blue) and C(<app>-green), the release state record (ConfigMap
    C(<app>-release)) and the release lock (Lease C(<app>-release)).
  - The active slot is taken from the Service selector, because that is where traffic goes. The slot the state
    record names is returned as well, and a difference is reported in RV(consistent) and RV(problems) (for
    example after someone edited the selector by hand, or a run died between the switch and its record).
  - Every slot is described by what its Deployment runs (image by digest, version, replicas, ready pods) next to
    what the record says it should run.
  - The lock is described with its holder, renewal time, expiry and whether it has expired, so an operator can
    tell a live run from a dead one before stealing the lock.
author:
  - userservice.deploy contributors (@userservice-deploy)
extends_documentation_fragment:
  - userservice.deploy.auth
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: Always C(changed=false).
options:
  namespace:
    description: Namespace of the application.
    type: str
    required: true
  app:
    description: Application name; prefix of the slot Deployments, the state record and the lock.
    type: str
    default: user-service
  service:
    description: The active Service. Defaults to O(app).
    type: str
  preview_service:
    description: A preview Service to describe as well. Defaults to C(<app>-preview); described only if it exists.
    type: str
  container_name:
    description: Container whose image is reported for each slot. Defaults to O(app).
    type: str
  history_limit:
    description: Most recent history entries of the state record to return (V(0) returns none).
    type: int
    default: 10
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Read the release state of production
  userservice.deploy.release_info:
    namespace: user-service-prod
  register: release

- name: Fail when the lock is held by a run that is still alive
  ansible.builtin.assert:
    that: not release.lock.held
    fail_msg: "{{ release.lock.holder }} is releasing until {{ release.lock.expires_at }}"

- name: Show the slots
  ansible.builtin.debug:
    msg: "{{ release.active_slot }} serves {{ release.slots[release.active_slot].image }}"
  when: release.active_slot is not none
"""

RETURN = r"""
exists:
  description: Whether anything of a blue/green release (state record, slot Deployment or slot selector) exists.
  returned: always
  type: bool
  sample: true
active_slot:
  description: The slot the active Service selects (V(null) when it selects none or does not exist).
  returned: always
  type: str
  sample: green
recorded_active_slot:
  description: The active slot according to the state record.
  returned: always
  type: str
  sample: green
consistent:
  description: Whether the Service, the record and the slot Deployments agree (see RV(problems)).
  returned: always
  type: bool
  sample: true
problems:
  description: Each disagreement found, in words.
  returned: always
  type: list
  elements: str
  sample: ["the Service selects slot blue but the state record says green"]
service:
  description: The active Service (name, whether it exists, selector).
  returned: always
  type: dict
  sample: {name: user-service, exists: true, selector: {"app.kubernetes.io/name": user-service}}
preview:
  description: The preview Service (name, selector, slot) when it exists.
  returned: when the preview Service exists
  type: dict
slots:
  description:
    - Per slot (V(blue), V(green)), what its Deployment runs and what the record says.
    - Keys are deployment, exists, active, pending, image, digest, version, replicas, ready, available, updated,
      recorded_image, recorded_digest, recorded_version, config_refs, revision, deployed_at.
  returned: always
  type: dict
  sample:
    green: {deployment: user-service-green, exists: true, active: true, pending: false,
            image: "127.0.0.1:5000/user-service@sha256:3de2...", digest: "sha256:3de2...", version: 1.0.0,
            replicas: 2, ready: 2, available: 2, updated: 2, recorded_digest: "sha256:3de2...",
            config_refs: [user-service-config-0a1b2c3d4e], revision: 3}
images:
  description: Image reference by digest per slot, as deployed (V(null) for a slot without a Deployment).
  returned: always
  type: dict
  sample: {blue: null, green: "127.0.0.1:5000/user-service@sha256:3de2..."}
pending_slot:
  description: A previewed slot waiting for promotion.
  returned: always
  type: str
phase:
  description: Phase of the state record (V(idle), V(done), V(failed), V(rolled_back), V(aborted) at rest; an active
    phase while a run is in flight).
  returned: always
  type: str
  sample: done
revision:
  description: Counter of pod templates released.
  returned: always
  type: int
in_flight:
  description: Whether the record shows a run that has not finished (running now, or died).
  returned: always
  type: bool
run:
  description: The in-flight run (id, action, holder, target and previous slot, step, start time).
  returned: always
  type: dict
history:
  description: The most recent runs, oldest first, at most O(history_limit).
  returned: always
  type: list
  elements: dict
last_failure:
  description: Why the last failed run failed, as data (check, query, value, bound, samples, time).
  returned: always
  type: dict
updated_at:
  description: When the state record was last written.
  returned: always
  type: str
record:
  description: The state record ConfigMap (name, exists, schema).
  returned: always
  type: dict
lock:
  description:
    - The release lock. C(held) is true while a holder is recorded and its lease has not expired; C(expired) is true
      when a holder is recorded but stopped renewing (a dead run, whose lock the next run takes over).
    - Keys are name, exists, holder, held, expired, acquired_at, renewed_at, duration_seconds, expires_at,
      seconds_left, transitions, takeover.
  returned: always
  type: dict
  sample: {name: user-service-release, exists: true, holder: "awx job 42 on awx-1", held: true, expired: false,
           renewed_at: "2026-01-02T03:04:05.000000Z", expires_at: "2026-01-02T03:05:05.000000Z", seconds_left: 41.5}
"""

import datetime
import traceback
from typing import Any, Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.userservice.deploy.plugins.module_utils.client import (
    AUTH_ARG_SPEC,
    KubeClient,
    require_libraries,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    ReleaseError,
    error_result,
)
from ansible_collections.userservice.deploy.plugins.module_utils.lock import (
    TAKEOVER_ANNOTATION,
    LeaseLock,
    holder_identity,
    lease_expiry,
)
from ansible_collections.userservice.deploy.plugins.module_utils.state import (
    ACTIVE_PHASES,
    SLOTS,
    StateStore,
    new_state,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock, isoformat

SLOT_LABEL = "deploy.userservice.io/slot"
VERSION_LABEL = "app.kubernetes.io/version"

OPTIONS: Dict[str, Dict[str, Any]] = {
    "namespace": dict(type="str", required=True),
    "app": dict(type="str", default="user-service"),
    "service": dict(type="str"),
    "preview_service": dict(type="str"),
    "container_name": dict(type="str"),
    "history_limit": dict(type="int", default=10),
}


def validate_params(params: Dict[str, Any]) -> None:
    if params["history_limit"] < 0:
        raise InvalidArgumentError("history_limit", "an integer >= 0", params["history_limit"])
    for option in ("namespace", "app"):
        if not params[option]:
            raise InvalidArgumentError(option, "a non-empty name", params[option])


def _container_image(deployment: Dict[str, Any], container: str) -> Optional[str]:
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for spec in containers:
        if spec.get("name") == container:
            return spec.get("image")
    return None


def _digest(image: Optional[str]) -> Optional[str]:
    return image.split("@", 1)[1] if image and "@" in image else None


def describe_slot(
    slot: str, deployment: Optional[Dict[str, Any]], recorded: Dict[str, Any], name: str, container: str
) -> Dict[str, Any]:
    status = (deployment or {}).get("status") or {}
    image = _container_image(deployment, container) if deployment else None
    return {
        "deployment": name,
        "exists": deployment is not None,
        "image": image,
        "digest": _digest(image),
        "version": (((deployment or {}).get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL),
        "replicas": int(((deployment or {}).get("spec") or {}).get("replicas") or 0) if deployment else 0,
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "recorded_image": recorded.get("image"),
        "recorded_digest": recorded.get("digest"),
        "recorded_version": recorded.get("version"),
        "config_refs": list(recorded.get("config_refs") or []),
        "revision": recorded.get("revision"),
        "deployed_at": recorded.get("deployed_at"),
    }


def describe_lock(lease: Optional[Dict[str, Any]], name: str, now: datetime.datetime) -> Dict[str, Any]:
    if lease is None:
        return {"name": name, "exists": False, "holder": None, "held": False, "expired": False}
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or None
    expiry = lease_expiry(lease)
    expired = bool(holder) and expiry is not None and expiry <= now
    return {
        "name": name,
        "exists": True,
        "holder": holder,
        # A holder with no renewal time can never expire: treat it as held, as LeaseLock does.
        "held": bool(holder) and not expired,
        "expired": expired,
        "acquired_at": spec.get("acquireTime"),
        "renewed_at": spec.get("renewTime"),
        "duration_seconds": spec.get("leaseDurationSeconds"),
        "expires_at": isoformat(expiry) if expiry and holder else None,
        "seconds_left": round((expiry - now).total_seconds(), 1) if expiry and holder and not expired else 0,
        "transitions": int(spec.get("leaseTransitions") or 0),
        "takeover": ((lease.get("metadata") or {}).get("annotations") or {}).get(TAKEOVER_ANNOTATION),
    }


def find_problems(
    active: Optional[str], state: Dict[str, Any], slots: Dict[str, Dict[str, Any]], service_exists: bool, exists: bool
) -> List[str]:
    """Every disagreement between the Service, the record and the Deployments, in words."""
    problems = []
    if not exists:
        return problems
    recorded = state.get("active_slot")
    if not service_exists:
        problems.append("the active Service does not exist")
    elif active is None and recorded:
        problems.append("the Service selects no slot but the state record says %s" % recorded)
    elif active and recorded and active != recorded and state.get("phase") not in ACTIVE_PHASES:
        problems.append("the Service selects slot %s but the state record says %s" % (active, recorded))
    elif active and not recorded:
        problems.append("the Service selects slot %s but the state record names no active slot" % active)
    if active and not slots[active]["exists"]:
        problems.append("the Service selects slot %s whose Deployment does not exist" % active)
    for slot, info in slots.items():
        if info["exists"] and info["recorded_digest"] and info["digest"] != info["recorded_digest"]:
            problems.append(
                "slot %s runs %s but the state record says %s" % (slot, info["digest"], info["recorded_digest"])
            )
    if active and slots[active]["exists"] and slots[active]["replicas"] == 0:
        problems.append("the active slot %s is scaled to 0" % active)
    return problems


def read_release(client: Any, params: Dict[str, Any], now: datetime.datetime) -> Dict[str, Any]:
    app, ns = params["app"], params["namespace"]
    container = params.get("container_name") or app
    service_name = params.get("service") or app
    preview_name = params.get("preview_service") or "%s-preview" % app

    service = client.read_optional("Service", ns, service_name)
    selector = dict(((service or {}).get("spec") or {}).get("selector") or {})
    active = selector.get(SLOT_LABEL) if selector.get(SLOT_LABEL) in SLOTS else None
    preview = client.read_optional("Service", ns, preview_name)

    store = StateStore(client, ns, app)
    recorded_state, _version = store.read()
    state = recorded_state or new_state(app)

    deployments = {slot: client.read_optional("Deployment", ns, "%s-%s" % (app, slot)) for slot in SLOTS}
    slots = {
        slot: describe_slot(
            slot, deployments[slot], (state.get("slots") or {}).get(slot) or {}, "%s-%s" % (app, slot), container
        )
        for slot in SLOTS
    }
    for slot, info in slots.items():
        info["active"] = slot == active
        info["pending"] = slot == state.get("pending_slot")

    # LeaseLock.read() needs an identity only to build the object; reading never uses it.
    lock = LeaseLock(client, ns, app, holder_identity())
    lease = lock.read()

    exists = recorded_state is not None or any(d is not None for d in deployments.values()) or active is not None
    problems = find_problems(active, state, slots, service is not None, exists)
    in_flight = state.get("phase") in ACTIVE_PHASES and bool(state.get("run"))
    limit = params["history_limit"]
    history = list(state.get("history") or [])
    result: Dict[str, Any] = {
        "changed": False,
        "exists": exists,
        "active_slot": active,
        "recorded_active_slot": state.get("active_slot"),
        "consistent": not problems,
        "problems": problems,
        "service": {"name": service_name, "exists": service is not None, "selector": selector},
        "slots": slots,
        "images": {slot: info["image"] for slot, info in slots.items()},
        "pending_slot": state.get("pending_slot"),
        "phase": state.get("phase"),
        "revision": int(state.get("revision") or 0),
        "in_flight": in_flight,
        "run": state.get("run") if in_flight else None,
        "history": history[-limit:] if limit else [],
        "last_failure": state.get("last_failure"),
        "updated_at": state.get("updated_at"),
        "record": {"name": store.name, "exists": recorded_state is not None, "schema": state.get("schema")},
        "lock": describe_lock(lease, lock.name, now),
    }
    if preview is not None:
        preview_selector = dict((preview.get("spec") or {}).get("selector") or {})
        result["preview"] = {
            "name": preview_name,
            "selector": preview_selector,
            "slot": preview_selector.get(SLOT_LABEL),
        }
    return result


def main() -> None:
    argument_spec = dict(OPTIONS)
    argument_spec.update(AUTH_ARG_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_libraries(module)
    try:
        validate_params(module.params)
        # Reads only, so check mode needs no dry-run flag; it is passed anyway so a future write cannot slip through.
        client = KubeClient.from_params(module.params, dry_run=module.check_mode)
        result = read_release(client, module.params, SystemClock().now())
    except ReleaseError as exc:
        module.fail_json(**error_result(exc))
    except Exception as exc:  # noqa: BLE001 - one place turns the unexpected into a readable failure
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
