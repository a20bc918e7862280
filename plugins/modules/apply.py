#!/usr/bin/python
# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: apply
short_description: Apply rendered manifests to a namespace in one run - checked, applied, rolled out and pruned
version_added: 0.2.0
description:
  - Converges a namespace to the manifests the C(config) and C(workload) roles render, in one module run, in this
    order, and stops at the first step that fails.
  - 1. With O(kubernetes_version), every manifest is checked offline against that version's schema (strict, so
    unknown fields are errors), Secrets with their values replaced. Nothing has contacted the cluster yet. A kind
    the library has no schema for (a custom resource) is not checked, with a warning.
  - 2. With O(permissions), one C(SelfSubjectAccessReview) per verb and resource; a missing permission fails
    the run naming each one, before any write.
  - 3. With O(refuse_slots_of), a namespace that runs blue/green slots of that app is refused (a rolling
    Deployment next to them would take the Service from the active slot).
  - 4. Server-side apply of each object with field manager O(field_manager), first the C(Namespace) objects of
    O(objects), then O(secrets), then the other objects in their order. Each object is read first, and it counts
    as changed only when its content differs from what was read (server bookkeeping such as C(resourceVersion),
    C(generation) and C(managedFields) does not count).
  - 5. With O(rollout), waits for that Deployment's rollout; fails early on C(ProgressDeadlineExceeded), on
    C(ReplicaFailure) and on new pods that cannot pull their image or crash, each only once the controller has
    observed the new generation.
  - 6. With O(prune), deletes the app's hashed ConfigMaps and Secrets that no Deployment or ReplicaSet pod
    template references, beyond the newest O(prune.history_limit) per entry. The objects of this run are always
    kept.
  - The connection is read from the kubeconfig or options directly when it holds a token, basic auth or a client
    certificate, so a run does not import the C(kubernetes) library.
  - Secret payloads never leave the module - not in the result, not in the diff (values are shown as
    C(<hidden>)), not in an error.
author:
  - userservice.deploy contributors (@userservice-deploy)
extends_documentation_fragment:
  - userservice.deploy.auth
  - userservice.deploy.attributes.action_group
attributes:
  check_mode:
    support: full
    description:
      - Every apply and delete is sent with C(dryRun=All), so the API server validates and admission-checks each
        change without storing it, and RV(objects) says what a real run would do. The rollout wait is skipped.
      - Objects whose namespace does not exist yet cannot be dry-run; they are reported with action V(planned).
  diff_mode:
    support: full
    description: Returns a before/after diff for each object that changes (Secret values replaced by C(<hidden>)).
  idempotent:
    support: full
    description:
      - Applying the same manifests again changes nothing and returns C(changed=false).
options:
  namespace:
    description:
      - Namespace of the objects. A namespaced manifest without C(metadata.namespace) lands here; the access
        review and pruning look here.
    type: str
    required: true
  objects:
    description:
      - Manifests to apply (dicts with C(apiVersion), C(kind) and C(metadata.name)). Kinds the roles render are
        known; any other kind is looked up in the API server's discovery.
    type: list
    elements: dict
    default: []
  secrets:
    description:
      - Secret manifests, applied after the C(Namespace) objects and before the rest. Kept apart from O(objects)
        because their O(secrets[].data) and O(secrets[].stringData) are C(no_log) - the values never appear in
        the output, while names, keys and labels do.
    type: list
    elements: dict
    default: []
    suboptions:
      apiVersion:
        description: V(v1).
        type: str
        default: v1
      kind:
        description: V(Secret).
        type: str
        default: Secret
      metadata:
        description: The Secret's metadata (C(name) at least).
        type: dict
        required: true
      type:
        description: Secret type, such as V(Opaque).
        type: str
      immutable:
        description: Whether the Secret is immutable.
        type: bool
      data:
        description: Base64-encoded values by key.
        type: dict
      stringData:
        description: Plain values by key.
        type: dict
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    default: userservice.deploy
  force_conflicts:
    description:
      - Take over fields another field manager owns. Without it such a conflict fails the run naming the object.
    type: bool
    default: false
  kubernetes_version:
    description:
      - Kubernetes minor version (such as V(1.34)) to check every manifest against, offline, before anything is
        sent. Omit it to skip the check. Needs the C(kubernetes-validate) Python library.
    type: str
  schema_cache:
    description:
      - Directory where the digests of manifests that passed the schema check are kept, one file per Kubernetes
        version and kubernetes-validate release. A manifest that passed before (same content, Secret values
        replaced) is not checked again - the check is a pure function of those three. V("") turns the cache off.
        A cache that cannot be read or written is ignored.
    type: str
    default: ~/.cache/userservice-deploy/schema-checked
  schema_check_only:
    description:
      - Only check O(objects) and O(secrets) against the schema of O(kubernetes_version) (required then) and
        stop; the cluster is not contacted. The roles' C(check_manifests) entry points use it.
    type: bool
    default: false
  permissions:
    description:
      - Permissions to check before the first write, as for M(userservice.deploy.access_review). Omit it or give
        V([]) to skip the review.
    type: list
    elements: dict
    default: []
    suboptions:
      group:
        description: API group (V("") for the core group).
        type: str
        required: true
      resource:
        description: Resource name (plural, lowercase).
        type: str
        required: true
      subresource:
        description: Subresource, if the permission is on one.
        type: str
      verbs:
        description: Verbs to check.
        type: list
        elements: str
        required: true
  refuse_slots_of:
    description:
      - App name. When Deployments of this app carry the C(deploy.userservice.io/slot) label (blue/green slots),
        fail before any write. A rolling deploy sets it.
    type: str
  rollout:
    description: Wait for the rollout of a Deployment after applying (skipped in check mode).
    type: dict
    suboptions:
      name:
        description: Deployment name.
        type: str
        required: true
      timeout:
        description: Seconds to wait at most.
        type: int
        default: 300
      poll:
        description:
          - Seconds between reads of the rollout's state when nothing changes.
          - A write of the Deployment by its controller ends the pause at once (a watch, as C(kubectl rollout status)
            waits); without the C(watch) permission the wait only polls.
        type: int
        default: 2
  prune:
    description: Delete hashed ConfigMaps and Secrets of an app that nothing references (after the rollout).
    type: dict
    suboptions:
      app_name:
        description: Value of the C(app.kubernetes.io/name) label of the app's objects.
        type: str
        required: true
      history_limit:
        description: Unreferenced objects to keep per entry, newest first.
        type: int
        default: 3
      managed_by:
        description: Value of the C(app.kubernetes.io/managed-by) label the config role sets.
        type: str
        default: userservice.deploy
      group_label:
        description: Label key that names the config entry of each object.
        type: str
        default: deploy.userservice.io/config
      hash_length:
        description: Length of the content hash at the end of each name; other names are never pruned.
        type: int
        default: 10
      keep:
        description: Names never to prune, besides the ConfigMaps and Secrets this run applies.
        type: list
        elements: str
        default: []
requirements:
  - kubernetes >= 24.2.0
  - kubernetes-validate (only with O(kubernetes_version))
seealso:
  - module: userservice.deploy.access_review
notes:
  - The C(config) and C(workload) roles and C(playbooks/deploy.yml) call this module; it can be used on its own
    with any manifests.
"""

EXAMPLES = r"""
- name: Apply the rendered objects, wait for the rollout and prune old config, in one run
  userservice.deploy.apply:
    namespace: user-service-dev
    objects: "{{ config_configmap_manifests + workload_manifests }}"
    secrets: "{{ config_secret_manifests }}"
    kubernetes_version: "1.34"
    permissions:
      - {group: apps, resource: deployments, verbs: [get, patch, list]}
      - {group: "", resource: configmaps, verbs: [get, patch, list, delete]}
    refuse_slots_of: user-service
    rollout:
      name: user-service
      timeout: 600
    prune:
      app_name: user-service
      history_limit: 3

- name: Show what a run would change, with a diff
  userservice.deploy.apply:
    namespace: user-service-staging
    objects: "{{ workload_manifests }}"
  check_mode: true
  diff: true
  register: plan
"""

RETURN = r"""
objects:
  description: Each object applied (or planned), in the order sent. Secrets appear by name only.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Object kind.
      type: str
    name:
      description: Object name.
      type: str
    namespace:
      description: Namespace, V(null) for a cluster-scoped object.
      type: str
    action:
      description:
        - V(created), V(updated) or V(unchanged); V(planned) in check mode when the namespace does not exist yet.
        - In check mode this is what a real run would do.
      type: str
  sample:
    - {kind: ConfigMap, name: user-service-app-3f2a9c1b7d, namespace: user-service-dev, action: unchanged}
    - {kind: Deployment, name: user-service, namespace: user-service-dev, action: updated}
pruned:
  description: ConfigMaps and Secrets deleted (or, in check mode, that would be), with their creation times.
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: ConfigMap, name: user-service-app-0c1d2e3f4a, created: "2026-11-30T10:00:00Z"}
rollout:
  description: The Deployment's replica counts once its rollout completed; V(null) when O(rollout) was not given
    or in check mode.
  returned: always
  type: dict
  sample: {name: user-service, replicas: 2, available: 2, updated: 2}
access:
  description:
    - The access review (user, groups, checked, allowed, denied) when O(permissions) was given, else V(null).
    - The user is looked up only when a permission is denied (V(null) otherwise).
  returned: always
  type: dict
schema_checked:
  description: Manifests checked against the schema (V(0) without O(kubernetes_version)).
  returned: always
  type: int
  sample: 12
"""

from typing import Any, Dict, List

from ansible_collections.userservice.deploy.plugins.module_utils import config_prune, manifests, schema_check
from ansible_collections.userservice.deploy.plugins.module_utils.access import (
    PERMISSION_OPTIONS,
    denied_message,
    expand_pairs,
    review_access,
    validate_namespace,
)
from ansible_collections.userservice.deploy.plugins.module_utils.client import AUTH_ARG_SPEC, KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import SLOT_LABEL
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ReleaseError
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run, run_module
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import wait_for_rollout

OPTIONS: Dict[str, Dict[str, Any]] = {
    "namespace": dict(type="str", required=True),
    "objects": dict(type="list", elements="dict", default=[]),
    # The option itself is not secret (names, labels and keys are reported); its values are: data and
    # stringData are no_log, and only they are masked in the output.
    "secrets": dict(
        type="list",
        elements="dict",
        default=[],
        no_log=False,
        options={
            "apiVersion": dict(type="str", default="v1"),
            "kind": dict(type="str", default="Secret"),
            "metadata": dict(type="dict", required=True),
            "type": dict(type="str"),
            "immutable": dict(type="bool"),
            "data": dict(type="dict", no_log=True),
            "stringData": dict(type="dict", no_log=True),
        },
    ),
    "field_manager": dict(type="str", default="userservice.deploy"),
    "force_conflicts": dict(type="bool", default=False),
    "kubernetes_version": dict(type="str"),
    "schema_cache": dict(type="str", default=schema_check.DEFAULT_CACHE),
    "schema_check_only": dict(type="bool", default=False),
    "permissions": dict(type="list", elements="dict", default=[], options=PERMISSION_OPTIONS),
    "refuse_slots_of": dict(type="str"),
    "rollout": dict(
        type="dict",
        options={
            "name": dict(type="str", required=True),
            "timeout": dict(type="int", default=300),
            "poll": dict(type="int", default=2),
        },
    ),
    "prune": dict(
        type="dict",
        options={
            "app_name": dict(type="str", required=True),
            "history_limit": dict(type="int", default=3),
            "managed_by": dict(type="str", default="userservice.deploy"),
            "group_label": dict(type="str", default="deploy.userservice.io/config"),
            "hash_length": dict(type="int", default=10),
            "keep": dict(type="list", elements="str", default=[], no_log=False),
        },
    ),
}


def _check_manifests(option: str, items: List[Any], only_kind: str = "") -> None:
    for index, item in enumerate(items):
        metadata = item.get("metadata") if isinstance(item, dict) else None
        problems = []
        if not isinstance(item, dict) or not item.get("apiVersion") or not item.get("kind"):
            problems.append("apiVersion and kind")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            problems.append("metadata.name")
        if only_kind and isinstance(item, dict) and item.get("kind") != only_kind:
            problems.append("kind %s" % only_kind)
        if problems:
            seen = "kind %r" % item.get("kind") if isinstance(item, dict) else type(item).__name__
            raise ReleaseError(
                "%s[%d] is not a manifest this module can apply" % (option, index),
                expected="a dict with %s" % " and ".join(problems),
                seen=seen if option == "secrets" else "%s, name %r" % (seen, (metadata or {}).get("name")),
            )


def _check_params(params: Dict[str, Any]) -> None:
    validate_namespace(params["namespace"])
    _check_manifests("objects", params["objects"])
    _check_manifests("secrets", params["secrets"], only_kind="Secret")
    for option, key, least in (("rollout", "timeout", 1), ("rollout", "poll", 1), ("prune", "history_limit", 0)):
        value = (params.get(option) or {}).get(key)
        if value is not None and value < least:
            raise ReleaseError(
                "%s.%s is out of range" % (option, key), expected="an integer >= %d" % least, seen=str(value)
            )


def _refuse_slots(client: KubeClient, namespace: str, app: str) -> None:
    slots = client.list("Deployment", namespace, "app.kubernetes.io/name=%s,%s" % (app, SLOT_LABEL))
    if slots:
        names = ", ".join(sorted(d["metadata"]["name"] for d in slots))
        raise ReleaseError(
            "namespace %s runs blue/green slots (%s), so a rolling deploy would add the Deployment %s next to "
            "them and take the Service selector away from the active slot" % (namespace, names, app),
            expected="the strategy the namespace was released with (workload_release_strategy / "
            "user_service_release_strategy bluegreen)",
            seen="rolling",
            hint="Nothing was changed. Changing the strategy in place is not supported: keep releasing with "
            "bluegreen, or delete the slots and their autoscalers (kubectl -n %s delete deployment,hpa -l %s; "
            "traffic stops until the rolling Deployment is Ready) and deploy again" % (namespace, SLOT_LABEL),
        )


def _ordered(objects: List[Dict[str, Any]], secrets: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    # Options the caller left out come back as None from the argument spec; they are not fields to apply.
    secrets = [{key: value for key, value in secret.items() if value is not None} for secret in secrets]
    namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    return namespaces + list(secrets) + [obj for obj in objects if obj["kind"] != "Namespace"]


def work(run: Run) -> Dict[str, Any]:
    params = run.module.params
    namespace = params["namespace"]
    _check_params(params)
    to_apply = _ordered(params["objects"], params["secrets"])
    result: Dict[str, Any] = run.partial
    result.update(changed=False, objects=[], pruned=[], rollout=None, access=None, schema_checked=0)

    if params["kubernetes_version"]:
        run.warnings.extend(schema_check.check(to_apply, params["kubernetes_version"], params["schema_cache"]))
        result["schema_checked"] = len(to_apply)
    if params["schema_check_only"]:
        return result

    client = KubeClient.from_params(params, dry_run=run.module.check_mode)
    if params["permissions"]:
        access = review_access(client, namespace, expand_pairs(params["permissions"]), identify=False)
        result["access"] = access
        if access["denied"]:
            return dict(result, failed=True, msg=denied_message(access, namespace))
    if params["refuse_slots_of"]:
        _refuse_slots(client, namespace, params["refuse_slots_of"])

    applied: List[manifests.Applied] = []
    try:
        manifests.apply_all(
            client, namespace, to_apply, params["field_manager"], params["force_conflicts"], done=applied
        )
    finally:
        # Also when an object fails half way: what was already written is reported, never hidden.
        result["objects"] = [item.report() for item in applied]
        result["changed"] = any(item.changed for item in applied)
    if run.module._diff:
        result["diff"] = [item.diff() for item in applied if item.changed]
    planned = {item.target.name for item in applied if item.action == "planned" and item.target.kind == "Deployment"}

    rollout = params["rollout"]
    if rollout and not run.module.check_mode and rollout["name"] not in planned:
        # A rolling update keeps its old pods while the new ones fail: the waiter's hint names the fix, then that.
        deployment = wait_for_rollout(
            client,
            namespace,
            rollout["name"],
            timeout=rollout["timeout"],
            interval=rollout["poll"],
            consequence=(
                "the pods of the previous template keep serving as far as maxUnavailable allows "
                "(kubectl -n %s rollout undo deployment/%s returns to it)" % (namespace, rollout["name"])
            ),
        )
        status = deployment.get("status") or {}
        result["rollout"] = {
            "name": rollout["name"],
            "replicas": status.get("replicas", 0),
            "available": status.get("availableReplicas", 0),
            "updated": status.get("updatedReplicas", 0),
        }

    prune = params["prune"]
    if prune and not any(item.action == "planned" for item in applied):
        keep = set(prune["keep"]) | {item.target.name for item in applied if item.target.kind in config_prune.KINDS}
        doomed = config_prune.plan(
            client,
            namespace,
            prune["app_name"],
            prune["managed_by"],
            prune["group_label"],
            keep,
            prune["history_limit"],
            prune["hash_length"],
        )
        for item in doomed:
            client.delete(item["kind"], namespace, item["name"])
            result["pruned"].append(item)
        result["changed"] = result["changed"] or bool(doomed)
    return result


def main() -> None:
    run_module([OPTIONS, AUTH_ARG_SPEC], work, required_if=[("schema_check_only", True, ("kubernetes_version",))])


if __name__ == "__main__":
    main()
