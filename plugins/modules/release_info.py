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
  - userservice.deploy.attributes.action_group
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
      recorded_image, recorded_digest, recorded_version, config_refs, revision, deployed_at, status (V(unverified),
      V(served), V(failed) or V(rolled_back), what the slot's history says and what rollback and abort decide on)
      and status_reason.
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
draining:
  description:
    - The previous slot a release keeps warm without holding the lock (C(slot), C(run_id), C(due)); a rollback may take
      it over, and the next run scales it down once it is due. Null when nothing drains.
  returned: always
  type: dict
strategy:
  description: V(bluegreen) or V(canary), from the state record (V(null) when nothing was released).
  returned: always
  type: str
tracks:
  description: With the canary strategy, the C(stable) and C(canary) Deployments, described like RV(slots).
  returned: when the strategy is canary
  type: dict
canary:
  description:
    - Where a canary stands. Keys are status (V(in progress), V(paused), V(frozen), V(aborted), V(stopped),
      V(idle)), version, step (the next step), steps, weight, share (of the pods, with the replica router), waiting,
      frozen, last_failure, and next_command (what promote.yml, abort.yml or release.yml would do now).
  returned: when the strategy is canary
  type: dict
next_rollback:
  description:
    - What C(playbooks/rollback.yml) without O(userservice.deploy.bluegreen#module:rollback_to) would do now, in words
      (a switch to which slot and version, instant or not, a no-op, or why it is refused).
  returned: always
  type: str
  sample: "switch to slot blue (version 1.4.1), instant: it is warm"
"""

from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC, KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module
from ansible_collections.userservice.deploy.plugins.module_utils.release_view import (
    OPTIONS,
    read_release,
    validate_params,
)
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import SystemClock


def work(run: Run) -> dict:
    params = run.module.params
    validate_params(params)
    # Reads only, so check mode needs no dry-run flag; it is passed anyway so a future write cannot slip through.
    client = KubeClient.from_params(params, dry_run=run.module.check_mode)
    return read_release(client, params, SystemClock().now())


def main() -> None:
    run_module([OPTIONS, AUTH_ARG_SPEC], work)


if __name__ == "__main__":
    main()
