# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health gate options; the argspec is HEALTH_ARG_SPEC in plugins/module_utils/health.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  health:
    description:
      - The health gate run on the new pods before any traffic moves to them.
      - Each Ready pod of the Deployment's current ReplicaSet is probed through the API server's pod proxy
        (C(pods/proxy), so no network path to the pods is needed), once per O(health.interval), until it has
        answered O(health.consecutive) times in a row.
      - A pod whose containers restart (its C(restartCount) grows) starts its count again, even after it had
        passed, and the restart counts as a failed probe.
      - The gate fails when a pod fails O(health.failure_threshold) probes in a row or when O(health.timeout)
        runs out; the per-pod probe results are returned either way.
      - Probe results keep each answer's status, content type and length, never its body, so nothing the
        endpoint returns reaches the release state record.
    type: dict
    default: {}
    suboptions:
      path:
        description:
          - URL path (with an optional query string) to GET on each pod.
        type: str
        default: /api/health/status
      port:
        description:
          - Container port the health endpoint listens on.
        type: int
        default: 3000
      scheme:
        description:
          - Scheme the API server uses to reach the pod.
        type: str
        choices: [http, https]
        default: http
      consecutive:
        description:
          - Number of successful answers in a row each pod must give; a failed answer starts the count again.
        type: int
        default: 3
      interval:
        description:
          - Seconds between two probes of the same pod.
        type: float
        default: 2.0
      request_timeout:
        description:
          - Seconds to wait for one answer; a slower answer counts as a failure.
        type: float
        default: 5.0
      timeout:
        description:
          - Seconds the whole gate may take.
        type: float
        default: 120.0
      failure_threshold:
        description:
          - Fail the gate as soon as any pod fails this many probes in a row (a container restart counts as one
            failed probe). A successful probe starts the count again.
          - V(0) lets only O(health.timeout) end the gate.
        type: int
        default: 3
      expected_status:
        description:
          - HTTP statuses that count as success. When not set, any 2xx status does.
        type: list
        elements: int
      json_path:
        description:
          - Dotted path of a field in the JSON answer to test as well, for example V(status) or V(checks.db.ok).
          - List items are addressed by index (V(items.0.name)).
        type: str
      condition:
        description:
          - How the field at O(health.json_path) is compared with O(health.value).
          - V(in) expects O(health.value) to be a list; V(<), V(<=), V(>), V(>=) compare numbers.
        type: str
        choices: ['==', '!=', '<', '<=', '>', '>=', in]
        default: '=='
      value:
        description:
          - Value the field at O(health.json_path) is compared with. Required with O(health.json_path).
        type: raw
"""
