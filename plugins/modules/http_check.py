#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: http_check
short_description: Probe URLs or Kubernetes Services over HTTP until they answer as expected
version_added: 0.1.0
description:
  - Sends GET requests to each URL in O(url) (directly, from where the module runs) and to each Service in
    O(service) (through the API server's service proxy, C(services/proxy), so no network path to the cluster
    is needed), and checks every answer's status, body, JSON field and latency.
  - Targets are probed round-robin, one probe per target every O(interval) seconds. A target passes once it has
    answered as expected O(consecutive) times in a row, and fails once more than O(retries) of its probes have
    failed. The module fails when any target fails, after every target has passed or failed.
  - A probe that gets no answer (connection refused, DNS, TLS, timeout after O(probe_timeout)) is a failed probe,
    and so is an answer with an unexpected status. Through the service proxy, a Service without ready endpoints
    answers HTTP 503.
  - Results describe a failing answer by status, content type and length; they never contain its body. A URL's
    C(user:password@) is shown as C(***@) in results and messages, and its password is not logged.
  - Meant as the smoke test after a deploy or release. The release engine's health gate and HTTP analysis checks
    judge answers with the same code.
author:
  - userservice.deploy contributors (@userservice-deploy)
extends_documentation_fragment:
  - userservice.deploy.auth
  - userservice.deploy.attributes.action_group
attributes:
  check_mode:
    support: full
    description:
      - The module only reads, so check mode sends exactly the same probes and reports the real result.
        A probe is a GET; if a target's GET changes something, check mode changes it too.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: The module never changes anything and always returns C(changed=false).
options:
  url:
    description:
      - URLs to GET directly from where the module runs (the controller for C(hosts=localhost)).
      - Credentials in a URL (C(https://user:password@host/)) are sent as basic authentication.
      - Redirects are followed for GET (C(follow_redirects=safe)).
      - At least one O(url) or O(service) is required; both may be given.
    type: list
    elements: str
    default: []
  service:
    description:
      - Names of Services in O(namespace) to GET O(path) from, on O(port), through the API server's service proxy.
      - Needs C(get) on C(services/proxy) in O(namespace), and the connection options (or E(K8S_AUTH_*)).
    type: list
    elements: str
    default: []
  namespace:
    description: Namespace of the Services in O(service). Required with O(service).
    type: str
  port:
    description: Service port, by number or name, for O(service). Required with O(service).
    type: str
  path:
    description: Path (and query string) to GET on each Service in O(service).
    type: str
    default: /
  scheme:
    description: Scheme the API server uses to reach each Service in O(service).
    type: str
    choices: [http, https]
    default: http
  expected_status:
    description: HTTP statuses that count as success. When not set, any 2xx status does.
    type: list
    elements: int
  body_regex:
    description:
      - A Python regular expression that must match somewhere in the answer's body (C(re.search)), for example
        V(ok) or V(^<!doctype html>).
    type: str
  json_path:
    description:
      - Dotted path of a field in the JSON answer (V(status), V(checks.db.ok), V(items.0.id)).
      - A missing or null field fails the probe. With neither O(value) nor O(min)/O(max), the field only has to
        exist and not be null.
    type: str
  condition:
    description:
      - How the field at O(json_path) is compared with O(value).
      - V(in) expects O(value) to be a list; V(<), V(<=), V(>), V(>=) compare numbers.
    type: str
    choices: ['==', '!=', '<', '<=', '>', '>=', in]
    default: '=='
  value:
    description: Value the field at O(json_path) is compared with; a list for V(in).
    type: raw
  min:
    description: Lowest acceptable number in the field at O(json_path); a value equal to it is ok.
    type: float
  max:
    description: Highest acceptable number in the field at O(json_path); a value equal to it is ok.
    type: float
  max_latency:
    description:
      - Seconds an answer may take, measured from sending the request to having read the whole answer.
      - Through the service proxy this includes the API server's time.
      - A slower answer with the expected status fails the probe; an answer slower than O(probe_timeout) never
        arrives.
    type: float
  consecutive:
    description: Number of expected answers in a row each target must give. A failed probe starts the count again.
    type: int
    default: 1
  retries:
    description:
      - Failed probes tolerated per target; one more fails the target. V(0) fails a target on its first failed
        probe.
      - Each target therefore takes at most (O(retries) + 1) * O(consecutive) probes.
    type: int
    default: 0
  interval:
    description: Seconds between two probes of the same target.
    type: float
    default: 1.0
  probe_timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 5.0
  url_validate_certs:
    description:
      - Whether to verify the TLS certificate of V(https) URLs in O(url).
      - The API server's certificate is governed by O(validate_certs), as for every module of the collection.
    type: bool
    default: true
requirements:
  - kubernetes >= 24.2.0 (only to probe Services)
notes:
  - To probe a Service through an Ingress or from outside the cluster, give its URL in O(url) instead.
seealso:
  - module: userservice.deploy.bluegreen
"""

EXAMPLES = r"""
- name: Smoke-test staging through its public URL
  userservice.deploy.http_check:
    url:
      - https://user-service.staging.example.com/api/health/status
    json_path: status
    value: ok
    consecutive: 3
    retries: 5
    interval: 2

- name: Probe the Service from outside the cluster, through the API server
  userservice.deploy.http_check:
    namespace: user-service-staging
    service: [user-service]
    port: http
    path: /api/users?limit=1
    expected_status: [200]
    max_latency: 0.5
    retries: 10
    interval: 3
  register: smoke

- name: Show how long the last answer took
  ansible.builtin.debug:
    msg: "{{ smoke.targets[0].target }} answered in {{ smoke.targets[0].latency }} s"
"""

RETURN = r"""
passed:
  description: Whether every target passed.
  returned: always
  type: bool
  sample: true
expected:
  description: What made an answer ok (status, body, JSON condition, latency).
  returned: always
  type: dict
  sample: {"expected_status": [200], "json_path": "status", "condition": "==", "value": "ok"}
targets:
  description: One entry per target, URLs first, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: C(GET <url>) with credentials shown as C(***@), or C(GET service <namespace>/<name>:<port><path>).
      type: str
      sample: GET service user-service-staging/user-service:http/api/health/status
    passed:
      description: Whether the target answered as expected O(consecutive) times in a row.
      type: bool
    attempts:
      description: Probes sent.
      type: int
      sample: 4
    failures:
      description: Failed probes.
      type: int
      sample: 1
    consecutive_successes:
      description: Expected answers in a row at the end.
      type: int
      sample: 3
    status:
      description: HTTP status of the last answer; V(null) when the last probe got no answer.
      type: int
      sample: 200
    latency:
      description: Seconds the last answer took.
      type: float
      sample: 0.012
    value:
      description: The field at O(json_path) in the last answer, else its status.
      type: raw
      sample: ok
    reason:
      description: Why the last probe passed or failed. Describes the answer by status, content type and length.
      type: str
      sample: "HTTP 503 (application/json, 27 bytes), expected 2xx"
    probes:
      description: The last five probes (time, ok, status, latency, value, reason).
      type: list
      elements: dict
started_at:
  description: When the first probe was sent (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-01-02T03:04:05.000000Z"
finished_at:
  description: When the last target was decided (UTC, ISO 8601).
  returned: always
  type: str
  sample: "2026-01-02T03:04:11.000000Z"
"""

from ansible_collections.userservice.deploy.plugins.module_utils.client import (
    AUTH_ARG_SPEC,
    KubeClient,
    require_libraries,
)
from ansible_collections.userservice.deploy.plugins.module_utils.http_check import (
    HTTP_CHECK_OPTIONS,
    HttpCheckSpec,
    run_http_check,
    url_passwords,
)
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module


def work(run: Run) -> dict:
    module = run.module
    # A password in a URL's userinfo is masked in everything the module returns, invocation included.
    module.no_log_values.update(url_passwords(module.params["url"] or []))
    spec = HttpCheckSpec(module.params)
    kube = None
    if spec.services:
        require_libraries(module)
        # Reads only; dry_run is passed anyway so a future write could not slip through in check mode.
        kube = KubeClient.from_params(module.params, dry_run=module.check_mode)
    result = run_http_check(spec, kube=kube)
    return dict(result, changed=False, failed=not result["passed"])


def main() -> None:
    run_module([HTTP_CHECK_OPTIONS, AUTH_ARG_SPEC], work, needs_kubernetes=False)


if __name__ == "__main__":
    main()
