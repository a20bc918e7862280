#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: access_review
short_description: Check that the Kubernetes credentials may do what a run needs in a namespace
version_added: 0.1.0
description:
  - Asks the API server, before a playbook writes anything, whether the current credentials may do each verb on each
    resource listed in O(permissions) in O(namespace), and fails with one message naming every missing permission and
    the user name the API server sees.
  - Each verb/resource pair is one C(SelfSubjectAccessReview) (C(authorization.k8s.io/v1)), answered by the same
    authorizers (RBAC, webhooks) a real request meets. Pairs asked for twice are checked once.
  - The user and groups come from a C(SelfSubjectReview) (C(authentication.k8s.io/v1), Kubernetes 1.28 and later). When
    the API server refuses or does not serve it, RV(user) is V(null) and the check goes on.
  - The module never changes anything. The API server answers both kinds of review without storing them, so the module
    sends no C(dryRun) and runs the same in check mode.
  - Credentials the API server rejects (HTTP 401) fail the module whatever O(fail_on_denied) says.
author:
  - userservice.deploy contributors (@userservice-deploy)
extends_documentation_fragment:
  - userservice.deploy.auth
  - userservice.deploy.attributes.action_group
attributes:
  check_mode:
    support: full
    description: The reviews are answered and not stored by the API server, so check mode sends exactly the same requests.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: The module never changes anything and always returns C(changed=false).
options:
  namespace:
    description: Namespace the permissions are checked in.
    type: str
    required: true
  permissions:
    description:
      - What the run needs. Each entry expands to one check per verb.
    type: list
    elements: dict
    required: true
    suboptions:
      group:
        description:
          - API group of the resource, without version (V(apps), V(networking.k8s.io)).
          - The core group (configmaps, secrets, pods, services) is the empty string V("").
        type: str
        required: true
      resource:
        description: Lowercase plural resource name (V(configmaps), V(deployments)).
        type: str
        required: true
      subresource:
        description: Subresource (V(proxy), V(scale), V(status)), if the permission is on one.
        type: str
      verbs:
        description:
          - Verbs to check (V(get), V(list), V(watch), V(create), V(update), V(patch), V(delete), V(deletecollection),
            or one of the special RBAC verbs V(bind), V(escalate), V(impersonate), V(use), V(approve), V(sign)).
        type: list
        elements: str
        required: true
  fail_on_denied:
    description:
      - Fail when a permission is missing. With V(false) the module only reports RV(denied).
    type: bool
    default: true
requirements:
  - kubernetes >= 24.2.0
"""

EXAMPLES = r"""
- name: Stop before the first write when the deployer lacks a permission
  userservice.deploy.access_review:
    namespace: user-service-staging
    permissions:
      - {group: "", resource: configmaps, verbs: [get, list, patch, delete]}
      - {group: apps, resource: deployments, verbs: [get, patch]}
      - {group: "", resource: pods, subresource: proxy, verbs: [get]}

- name: Report what is missing without failing
  userservice.deploy.access_review:
    namespace: user-service-prod
    permissions:
      - {group: networking.k8s.io, resource: networkpolicies, verbs: [get, patch]}
    fail_on_denied: false
  register: access

- name: Show the missing permissions
  ansible.builtin.debug:
    msg: "{{ access.user }} lacks {{ access.denied | map(attribute='verb') | list }}"
  when: access.denied | length > 0
"""

RETURN = r"""
user:
  description: User name the API server sees for the credentials; V(null) when it cannot say (no SelfSubjectReview).
  returned: always
  type: str
  sample: system:serviceaccount:user-service-staging:user-service-deployer
groups:
  description: Groups of that user (empty when the user is unknown).
  returned: always
  type: list
  elements: str
  sample: ["system:serviceaccounts", "system:serviceaccounts:user-service-staging", "system:authenticated"]
checked:
  description: Number of distinct verb/resource pairs checked.
  returned: always
  type: int
  sample: 7
allowed:
  description: Each allowed pair as C(<verb> <resource>[.<group>][/<subresource>]).
  returned: always
  type: list
  elements: str
  sample: ["get configmaps", "patch deployments.apps", "get pods/proxy"]
denied:
  description: Each denied pair.
  returned: always
  type: list
  elements: dict
  contains:
    verb:
      description: The verb.
      type: str
    group:
      description: API group (V("") for the core group).
      type: str
    resource:
      description: Resource name.
      type: str
    subresource:
      description: Subresource, V(null) when none.
      type: str
    namespace:
      description: The namespace checked.
      type: str
    reason:
      description: The authorizer's reason and evaluation error, if it gave any (often empty).
      type: str
  sample:
    - {verb: patch, group: networking.k8s.io, resource: networkpolicies, subresource: null,
       namespace: user-service-staging, reason: ""}
"""

from ansible_collections.userservice.deploy.plugins.module_utils.access import (
    OPTIONS,
    denied_message,
    expand_pairs,
    review_access,
    validate_namespace,
)
from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC, KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module


def work(run: Run) -> dict:
    params = run.module.params
    namespace = params["namespace"]
    validate_namespace(namespace)
    pairs = expand_pairs(params["permissions"])
    # The reviews are not persisted, so there is nothing for dry-run to hold back.
    result = review_access(KubeClient.from_params(params), namespace, pairs)
    if result["denied"] and params["fail_on_denied"]:
        return dict(result, failed=True, msg=denied_message(result, namespace))
    return result


def main() -> None:
    run_module([OPTIONS, AUTH_ARG_SPEC], work)


if __name__ == "__main__":
    main()
