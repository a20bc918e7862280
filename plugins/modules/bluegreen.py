#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bluegreen
short_description: Health-gated blue/green release of an application on Kubernetes
version_added: 0.1.0
description:
  - Runs a blue/green release with nothing installed in the cluster. Two Deployments, C(<app>-blue) and
    C(<app>-green), hold the two slots; the active Service selects one of them through the label
    C(deploy.userservice.io/slot).
  - O(state=released) deploys the new pod template (image pinned by digest) into the inactive slot, waits for a
    complete rollout (failing fast on C(ProgressDeadlineExceeded) and on pods that cannot start), runs the health
    gate on every new pod through the API server's pod proxy, runs the optional pre-promotion analysis, switches the
    Service selector with one patch guarded by its resourceVersion, verifies that the Service's endpoints are the
    new pods and that it answers, runs the optional post-promotion analysis (flipping the selector back on failure)
    and scales the previous slot down after O(scale_down_delay) seconds.
  - O(state=previewed) stops before the switch (optionally pointing O(preview_service) at the new slot);
    O(state=promoted) switches to the previewed slot; O(state=rolled_back) flips back to the previous slot (with no
    new pods while it is still warm, otherwise after scaling it up and gating it); O(state=aborted) removes a slot
    that was not promoted.
  - The release state (active slot, images by digest, revision, bounded history, last failure as data) is kept in
    the ConfigMap C(<app>-release); the Lease C(<app>-release) is the lock. A run that died is resumed by the next
    run of the same release, or superseded by another action (its never-served slot is then marked failed).
  - Each slot carries its history as data, C(unverified), C(served), C(failed) or C(rolled_back) with a reason.
    Rollback goes to the slot that served before the current one and is idempotent; it refuses a failed or
    unverified slot and a preview waiting for approval. Abort removes only a slot that never served.
  - No action ever scales down, deletes or replaces the pod template of the Deployment the live Service selects.
    The Service is read again right before every such write, and the write is refused if it selects that
    Deployment's pods.
  - Check mode returns the ordered plan of every step and writes nothing; diff mode shows the selector and replica
    changes.
author:
  - userservice.deploy maintainers (@userservice-deploy)
extends_documentation_fragment:
  - userservice.deploy.auth
  - userservice.deploy.attributes.action_group
  - userservice.deploy.health
  - userservice.deploy.analysis
  - userservice.deploy.lock
  - userservice.deploy.notify
attributes:
  check_mode:
    support: full
    description:
      - Returns the plan; no object, state record or lock is written. The lock is only checked; with O(lock_steal)
        the plan names the holder it would take over instead of failing.
  diff_mode:
    support: full
    description: Shows Service selector and Deployment replica and image changes. No Secret values are involved.
  idempotent:
    support: full
    description: Releasing the pod template that already serves traffic is C(changed=false).
options:
  namespace:
    description: Namespace of the application.
    type: str
    required: true
  app:
    description:
      - Application name; value of C(app.kubernetes.io/name) and prefix of the slot Deployments, the state record
        and the lock.
    type: str
    default: user-service
  state:
    description:
      - V(released) runs a full release; V(previewed) deploys and gates the new slot without moving traffic;
        V(promoted) switches traffic to the previewed slot; V(rolled_back) switches back to the previous slot;
        V(aborted) removes the slot of a release that was not promoted; V(monitored) runs the
        O(post_promotion_analysis) checks against the live slot (the pipeline's post-deployment monitoring) and
        rolls back to the previous slot on a V(fail) verdict.
    type: str
    default: released
    choices: [released, previewed, promoted, rolled_back, aborted, monitored]
  image:
    description:
      - Image pinned by digest, C(registry/repository@sha256:<64 hex>). Required with O(state=released) and
        O(state=previewed). Tags are refused.
    type: str
  version:
    description: Version label of the release (C(app.kubernetes.io/version)); templated into analysis queries.
    type: str
  pod_template:
    description:
      - Pod template (C(metadata) and C(spec)) of the application, for example as rendered by the C(workload) role.
        The module adds the name, slot, version and managed-by labels and sets the image of O(container_name).
    type: dict
  container_name:
    description: Container of O(pod_template) that runs O(image). Defaults to O(app).
    type: str
  replicas:
    description:
      - The least number of replicas of the new slot. The slot starts at the size that serves now when that is
        larger (the serving slot's replicas, and its HPA's current and desired replicas with O(autoscaler)).
    type: int
    default: 1
  progress_deadline_seconds:
    description: C(progressDeadlineSeconds) of the slot Deployments.
    type: int
    default: 600
  config_refs:
    description: Names of the ConfigMaps and Secrets the pod template uses; recorded per slot in the state record.
    type: list
    elements: str
    default: []
  service:
    description: The active Service whose selector is switched. Defaults to O(app). It must exist.
    type: str
  preview_service:
    description: A Service pointed at the new slot by O(state=previewed) (created if missing, deleted by abort).
    type: str
  rollout_timeout:
    description: Seconds to wait for the new slot's rollout to complete.
    type: float
    default: 600
  verify_timeout:
    description: Seconds to wait, after the switch, for the Service's endpoints to be exactly the new pods.
    type: float
    default: 60
  scale_down_delay:
    description:
      - Seconds the previous slot stays warm after the switch (for an instant rollback) before it is scaled to 0.
        The module waits for it without holding the lock (the record says C(draining)), so a rollback started
        meanwhile takes over at once and the scale-down is skipped; if the module dies meanwhile, the next run
        performs the due scale-down. V(-1) keeps the previous slot running.
    type: int
    default: 30
  on_failure:
    description:
      - What happens to the new slot when it fails before the switch (rollout, health gate, pre-promotion
        analysis). Traffic is never moved in that case.
    type: str
    default: scale_down
    choices: [scale_down, keep]
  pre_promotion_analysis:
    description:
      - Names of O(analysis.checks) run before the switch. A V(fail) verdict stops the release (traffic untouched).
      - An V(inconclusive) verdict pauses it like a preview and fails the task; the new slot stays up, and
        O(state=promoted) or O(state=aborted) decides.
    type: list
    elements: str
    default: []
  post_promotion_analysis:
    description:
      - Names of O(analysis.checks) run after the switch (and by O(state=monitored)). A V(fail) verdict switches
        traffic back to the previous slot; V(inconclusive) keeps traffic and returns a warning.
    type: list
    elements: str
    default: []
  history_limit:
    description: Runs kept in the history of the state record.
    type: int
    default: 10
  rollback_to:
    description:
      - With O(state=rolled_back), the version (or the revision number) to roll back to, instead of the last slot
        that served before the current one. It must be what a slot still holds; a slot that failed or never served
        is refused. Naming the version that already serves is a no-op.
    type: str
  post_switch_watch:
    description:
      - Seconds after a verified switch during which the serving pods must stay Ready, must not restart and the
        Service must answer the health path. A failure switches traffic back, like a failed post-promotion
        analysis. It runs whether or not analysis is configured. V(0) turns it off.
    type: float
    default: 10
  autoscaler:
    description:
      - An C(autoscaling/v2) HorizontalPodAutoscaler spec without C(scaleTargetRef). When set, the module points an
        HPA named after the serving slot's Deployment at that slot right after every verified move of traffic
        (release, switch back, rollback) and removes the other slot's HPA, and it sizes a new slot from the live
        count of the serving slot and its HPA instead of O(replicas) alone.
      - Unset, an HPA that already targets one of the slots follows traffic with its own spec (what a rollback or
        O(state=monitored) run, which render no new spec, rely on).
    type: dict
  manage_autoscaler:
    description: V(false) leaves every HorizontalPodAutoscaler alone.
    type: bool
    default: true
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Release 1.4.2 with a health gate and a pre-promotion error-ratio check
  userservice.deploy.bluegreen:
    namespace: user-service-prod
    image: registry.example.com/user-service@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
    version: 1.4.2
    pod_template: "{{ workload_pod_template }}"
    replicas: 3
    health:
      consecutive: 3
    analysis:
      prometheus:
        url: http://prometheus.monitoring:9090
      checks:
        - name: error-ratio
          type: prometheus
          metric: error_ratio
          max: 0.01
          samples: 5
          interval: 10
          on_no_data: inconclusive
    pre_promotion_analysis: [error-ratio]
    post_promotion_analysis: [error-ratio]

- name: Show the plan only
  userservice.deploy.bluegreen:
    namespace: user-service-prod
    image: "{{ image_pushed.reference }}"
    version: "{{ user_service_version }}"
    pod_template: "{{ workload_pod_template }}"
  check_mode: true
  diff: true

- name: Roll back to the previous slot
  userservice.deploy.bluegreen:
    namespace: user-service-prod
    state: rolled_back
"""

RETURN = r"""
plan:
  description: The ordered steps of the run (in check mode, of the run that would happen).
  returned: always
  type: list
  elements: dict
  sample:
    - {step: 1, action: create, kind: Deployment, name: user-service-green, changes: []}
active_slot:
  description: The slot serving traffic when the run started (after a successful release, the new one).
  returned: always
  type: str
  sample: green
target_slot:
  description: The slot the run deployed to or switched to.
  returned: when a release, promotion or rollback was planned
  type: str
  sample: green
previous_slot:
  description: The slot that served traffic before the switch.
  returned: when a release, promotion or rollback was planned
  type: str
health:
  description: Per-pod results of the health gate.
  returned: when the gate ran
  type: dict
verdicts:
  description: Analysis results by phase (C(pre-promotion), C(post-promotion)) with every sample.
  returned: always
  type: dict
failure:
  description: Why the run failed, as data (check, query, value, bound, samples, expected, seen).
  returned: on failure
  type: dict
state:
  description: The release state record after the run.
  returned: always
  type: dict
switched_at:
  description: Time the selector was patched.
  returned: when traffic moved
  type: str
reverted_at:
  description: Time the selector was flipped back after a failed verification or post-promotion analysis.
  returned: when traffic was switched back
  type: str
scaled_down:
  description: The previous slot scaled to 0 and when.
  returned: when the previous slot was scaled down
  type: dict
lock:
  description:
    - The lock taken (holder, expiry, whether it was taken over from a dead run). In check mode with
      O(lock_steal), the live holder the run would take over (C(holder), C(would_steal)).
  returned: when the lock was taken or checked with a live holder
  type: dict
pending_slot:
  description: The slot holding a previewed (or paused) release, waiting for O(state=promoted) or O(state=aborted).
  returned: when a preview was left pending
  type: str
aborted_slot:
  description: The slot whose Deployment abort removed.
  returned: with O(state=aborted)
  type: str
kept_slot:
  description: A slot abort did not remove because its history shows it served traffic.
  returned: when abort kept a slot
  type: str
instant:
  description: Whether the rollback target was warm (no new pods needed).
  returned: with O(state=rolled_back) or O(state=monitored) when a rollback was planned
  type: bool
replicas:
  description: Replicas the new (or rolled back to) slot starts with, sized from what serves now.
  returned: when a slot is deployed or rolled back to
  type: int
breach:
  description: The failure of the monitor's analysis that triggered an automatic rollback.
  returned: with O(state=monitored) on a V(fail) verdict
  type: dict
interrupted_run:
  description: The run the record showed in flight (its holder died); it was resumed or superseded.
  returned: when a dead run was found
  type: dict
verified_endpoints:
  description: The Service's ready endpoint addresses after the verified switch.
  returned: when traffic moved
  type: list
  elements: str
autoscaler:
  description: What the module did to the HPAs after traffic moved (C(serving), C(applied), C(removed)).
  returned: when traffic moved
  type: dict
message:
  description: Why nothing had to be done.
  returned: when nothing changed
  type: str
"""


from ansible_collections.userservice.deploy.plugins.module_utils.analysis import ANALYSIS_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen import BlueGreen
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_args import (
    BLUEGREEN_OPTIONS,
    validate_params,
)
from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.health import HEALTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module
from ansible_collections.userservice.deploy.plugins.module_utils.notify import NOTIFY_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.release_module import run_strategy, strategy_inputs


def work(run: Run) -> dict:
    validate_params(run.module.params)
    client, inputs = strategy_inputs(run)
    return run_strategy(run, BlueGreen(client, run.module.params, **inputs))


def main() -> None:
    run_module(
        [BLUEGREEN_OPTIONS, AUTH_ARG_SPEC, HEALTH_ARG_SPEC, ANALYSIS_ARG_SPEC, LOCK_ARG_SPEC, NOTIFY_ARG_SPEC],
        work,
        required_if=[
            ("state", "released", ("image", "version", "pod_template")),
            ("state", "previewed", ("image", "version", "pod_template")),
        ],
    )


if __name__ == "__main__":
    main()
