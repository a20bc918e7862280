#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary
short_description: Metric-gated canary release of an application on Kubernetes
version_added: 0.1.0
description:
  - Runs a canary release with nothing installed in the cluster. Two Deployments, C(<app>-stable) and C(<app>-canary),
    are the tracks (label C(deploy.userservice.io/track)). The new version runs as the canary and gets a share of
    the traffic that grows by O(steps) while its checks hold; then the stable track takes its pod template and the
    canary is removed.
  - O(steps) is a list of dicts with one key each. C(weight) moves that many percent of the traffic to the canary.
    C(pause) waits that many seconds, or with the value C(approval) ends the run as V(paused) (O(state=promoted)
    continues, O(state=aborted) ends it). C(analysis) runs the named O(analysis.checks) against the canary track.
  - Traffic is split by a router, O(router.type). V(replicas) (the default, nothing but Kubernetes) makes the weight
    the canary's share of the pods behind the app's one Service; canary pods join the Service only once they
    passed their health gate. V(gateway) writes Gateway API C(HTTPRoute) backend weights, V(istio) an Istio
    C(VirtualService), V(nginx) an NGINX Ingress canary Ingress; these three route to the Services
    C(<app>-stable) and C(<app>-canary), which the module creates, and can send requests with a header or cookie to
    the canary whatever the weight.
  - The first release (no stable track yet) becomes the stable track after its gate; there is nothing to compare a
    canary with.
  - A failure (a gate, an analysis V(fail)) aborts the canary (weight 0, canary scaled to 0, the stable track
    untouched), or with O(on_failure=freeze) holds the weights and stops. An V(inconclusive) analysis (no data) or
    an V(error) one (the measuring failed, for example Prometheus away for O(analysis.checks[].error_limit)
    samples) is not a verdict on the canary; it holds the weights and ends the run like an approval pause, but
    failed, so a pipeline notices.
  - The stable track is never scaled down, deleted or replaced, except by the promotion of the very release that
    ran as the canary, by a rolling update at its live size. Its autoscaler stays on it; the canary is sized
    from the stable track's live replica count, which is never inflated.
  - The release state and the lock are the ConfigMap and Lease C(<app>-release), as for blue/green. A run that
    died is resumed by the next run of the same release at its recorded step and weight.
  - Check mode returns the ordered plan of every step (weights, replica counts, pauses, analyses, promotion) and
    writes nothing; diff mode shows the weight and replica changes.
author:
  - userservice.deploy contributors (@userservice-deploy)
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
    description: Shows the canary weight and the replica changes of each step. No Secret values are involved.
  idempotent:
    support: full
    description:
      - Releasing the version the stable track runs is C(changed=false); so is releasing a canary that waits for
        approval (the result says so).
options:
  namespace:
    description: Namespace of the application.
    type: str
    required: true
  app:
    description: Application name; value of C(app.kubernetes.io/name) and prefix of the track Deployments.
    type: str
    default: user-service
  state:
    description:
      - V(released) deploys the canary and walks O(steps) (resuming a run that died, at its step); V(promoted)
        continues a canary that waits for approval (or an inconclusive analysis), or with O(skip_steps) ships it
        at once, as it does a frozen one; V(aborted) takes the canary's weight to 0 and scales it to 0.
      - V(monitored), the pipeline's post-deployment stage, runs the O(post_promotion_analysis) checks on the
        stable track. A failing verdict fails the run with its data, marks the release C(failed) in the record
        and names the version the promotion replaced; traffic is never moved, because a canary keeps no older
        release warm (release that version again to go back through the steps). A check that cannot measure,
        or a lost lease, fails the run without a verdict and marks nothing.
    type: str
    default: released
    choices: [released, promoted, aborted, monitored]
  image:
    description: Image pinned by digest, C(registry/repository@sha256:<64 hex>). Required with O(state=released).
    type: str
  version:
    description: Version label of the release (C(app.kubernetes.io/version)); templated into analysis queries.
    type: str
  pod_template:
    description: Pod template of the application; the module adds the name, track, version and managed-by labels.
    type: dict
  container_name:
    description: Container of O(pod_template) that runs O(image). Defaults to O(app).
    type: str
  replicas:
    description: Replicas of the stable track at the first release, and the least size it is promoted at.
    type: int
    default: 1
  progress_deadline_seconds:
    description: C(progressDeadlineSeconds) of the track Deployments.
    type: int
    default: 600
  config_refs:
    description: Names of the ConfigMaps and Secrets the pod template uses; recorded per track.
    type: list
    elements: str
    default: []
  service:
    description: The app's Service. Defaults to O(app). It must exist.
    type: str
  rollout_timeout:
    description: Seconds to wait for a track's rollout to complete.
    type: float
    default: 600
  steps:
    description:
      - The canary's steps, in order (see the description). Weights are whole percentages, 1 to 100, and only grow.
        At least one weight step is required; the first step cannot be an approval.
      - Required with O(state=released); with O(state=promoted) the same steps let it continue after an approval.
    type: list
    elements: dict
    default: []
  router:
    description: How a weight reaches the clients.
    type: dict
    default: {}
    suboptions:
      type:
        description: V(replicas), V(gateway), V(istio) or V(nginx) (see the description).
        type: str
        default: replicas
        choices: [replicas, gateway, istio, nginx]
      port:
        description: The Service port the route sends to (a number for V(istio)). Required except for V(replicas).
        type: raw
      route:
        description: Name of the route object (HTTPRoute, VirtualService, or the app's Ingress for V(nginx)). Defaults to O(app).
        type: str
      gateway:
        description: The Gateway the HTTPRoute attaches to (V(gateway)), C({name, namespace, sectionName}).
        type: dict
      gateways:
        description: Istio gateways of the VirtualService (V(istio)); unset means the mesh.
        type: list
        elements: str
      hostnames:
        description: Hostnames of the HTTPRoute, or hosts of the VirtualService (default O(app)).
        type: list
        elements: str
      header:
        description: C({name, value}); requests carrying this header go to the canary whatever the weight.
        type: dict
      cookie:
        description: A cookie name; requests with C(<cookie>=always) go to the canary whatever the weight.
        type: str
  on_failure:
    description:
      - V(abort) takes the weight to 0 and scales the canary to 0; V(freeze) holds the weights and stops, for
        releases whose migrations cannot be undone (see the docs); O(state=promoted) or O(state=aborted) decides.
    type: str
    default: abort
    choices: [abort, freeze]
  skip_steps:
    description: With O(state=promoted), ship the canary now instead of continuing its remaining steps.
    type: bool
    default: false
  post_promotion_analysis:
    description:
      - Names of checks in O(analysis.checks) that O(state=monitored) runs on the stable track. Required with
        O(state=monitored); each name once.
    type: list
    elements: str
    default: []
  history_limit:
    description: Runs kept in the history of the state record.
    type: int
    default: 10
  autoscaler:
    description:
      - An C(autoscaling/v2) HorizontalPodAutoscaler spec without C(scaleTargetRef), applied to the stable track at
        the first release and after each promotion. Unset, an existing stable HPA keeps its own spec.
    type: dict
  manage_autoscaler:
    description: V(false) leaves every HorizontalPodAutoscaler alone.
    type: bool
    default: true
requirements:
  - kubernetes >= 24.2.0
seealso:
  - module: userservice.deploy.bluegreen
"""

EXAMPLES = r"""
- name: Canary 1.4.2 at 10, 25 and 50 percent with the error ratio checked between steps
  userservice.deploy.canary:
    namespace: user-service-prod
    image: registry.example.com/user-service@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0
    version: 1.4.2
    pod_template: "{{ workload_pod_template }}"
    steps:
      - weight: 10
      - pause: 60
      - analysis: [error-ratio, latency]
      - weight: 25
      - analysis: [error-ratio, latency]
      - weight: 50
      - pause: approval
      - analysis: [error-ratio, latency]
    analysis:
      prometheus:
        url: http://prometheus.monitoring:9090
      checks:
        - name: error-ratio
          type: prometheus
          metric: error_ratio
          max: 0.01
          samples: 3
          interval: 20
          on_no_data: inconclusive
        - name: latency
          type: prometheus
          metric: latency_quantile
          quantile: 0.99
          max: 0.5
          samples: 3
          interval: 20
          on_no_data: inconclusive

- name: Weights through a Gateway API HTTPRoute, with a header that always reaches the canary
  userservice.deploy.canary:
    namespace: user-service-prod
    image: "{{ image_pushed.reference }}"
    version: "{{ user_service_version }}"
    pod_template: "{{ workload_pod_template }}"
    router:
      type: gateway
      port: 80
      gateway: {name: platform, namespace: gateway-system}
      hostnames: [user-service.example.com]
      header: {name: X-Canary, value: always}
    steps: [{weight: 10}, {analysis: [error-ratio]}, {weight: 50}, {analysis: [error-ratio]}]

- name: Continue after the approval pause
  userservice.deploy.canary:
    namespace: user-service-prod
    state: promoted
    steps: "{{ release_canary_steps }}"

- name: Post-deployment monitoring of the promoted release (fails on a breach; traffic stays)
  userservice.deploy.canary:
    namespace: user-service-prod
    state: monitored
    post_promotion_analysis: [error-ratio]
    analysis:
      prometheus:
        url: http://prometheus.monitoring:9090
      checks:
        - {name: error-ratio, type: prometheus, metric: error_ratio, max: 0.01, samples: 3, interval: 20}
"""

RETURN = r"""
status:
  description:
    - How the run ended. V(released) (a first release became the stable track), V(promoted), V(paused) (waiting
      for approval or after an inconclusive analysis; RV(waiting) says which), V(aborted), V(frozen),
      V(unchanged), V(monitored) (the stable track passed the monitor's checks).
  returned: always
  type: str
  sample: paused
breach:
  description: With O(state=monitored), the failed check as data, when the stable track breached it.
  returned: when the monitor found a breach
  type: dict
waiting:
  description: Why the canary waits (V(approval) or V(inconclusive analysis)).
  returned: when RV(status=paused)
  type: str
step:
  description: Index of the next step to run (or the one that failed).
  returned: when a canary was planned or run
  type: int
weight:
  description: The canary's weight (percent) at the end of the run.
  returned: when a canary was planned or run
  type: int
weights:
  description:
    - Each weight step taken by this run, with the share the router achieved (for V(replicas), the pods'
      share), the replicas of both tracks and the time.
  returned: always
  type: list
  elements: dict
router:
  description: The router used.
  returned: always
  type: str
  sample: replicas
plan:
  description: The ordered steps of the run (in check mode, of the run that would happen).
  returned: always
  type: list
  elements: dict
verdicts:
  description: Analysis results by step (C(step N)) with every sample.
  returned: always
  type: dict
health:
  description: Per-track results of the health gates.
  returned: when a gate ran
  type: dict
failure:
  description: Why the run failed, as data (check, query, value, bound, samples, expected, seen).
  returned: on failure
  type: dict
state:
  description: The release state record after the run (C(canary) holds the progress).
  returned: always
  type: dict
lock:
  description: The lock taken, or in check mode with O(lock_steal) the holder it would take over.
  returned: when the lock was taken or checked with a live holder
  type: dict
version:
  description: The version released, promoted or aborted.
  returned: when known
  type: str
release:
  description: Hash of the released pod template (the same on both tracks once promoted).
  returned: with O(state=released)
  type: str
resumed:
  description: Whether this run resumed a dead run's canary at its recorded step.
  returned: with O(state=released) when a canary ran
  type: bool
autoscaler:
  description: What the module did to the stable track's HPA.
  returned: after a first release or a promotion
  type: dict
promoting_at:
  description: When the promotion started (the stable track's rolling update to the canary's template).
  returned: when the steps were done and the promotion began
  type: str
aborted_at:
  description: When a failed step's canary was taken out of traffic (weight 0).
  returned: when a failure aborted the canary
  type: str
interrupted_run:
  description: The run the record showed in flight (its holder died); it was resumed or superseded.
  returned: when a dead run was found
  type: dict
message:
  description: Why nothing had to be done, or what the canary waits for.
  returned: sometimes
  type: str
"""


from ansible_collections.userservice.deploy.plugins.module_utils.analysis import ANALYSIS_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.canary import Canary
from ansible_collections.userservice.deploy.plugins.module_utils.canary_args import CANARY_OPTIONS, validate_params
from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.health import HEALTH_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.lock import LOCK_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module
from ansible_collections.userservice.deploy.plugins.module_utils.notify import NOTIFY_ARG_SPEC
from ansible_collections.userservice.deploy.plugins.module_utils.release_module import run_strategy, strategy_inputs


def work(run: Run) -> dict:
    steps = validate_params(run.module.params)
    client, inputs = strategy_inputs(run)
    return run_strategy(run, Canary(client, run.module.params, steps, **inputs))


def main() -> None:
    run_module(
        [CANARY_OPTIONS, AUTH_ARG_SPEC, HEALTH_ARG_SPEC, ANALYSIS_ARG_SPEC, LOCK_ARG_SPEC, NOTIFY_ARG_SPEC],
        work,
        required_if=[("state", "released", ("image", "version", "pod_template", "steps"))],
    )


if __name__ == "__main__":
    main()
