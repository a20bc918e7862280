# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-side apply of rendered manifests, one object at a time, with a before/after comparison.

Each object is read, then applied with ``application/apply-patch+yaml`` under one field manager (with
``dryRun=All`` in check mode), and ``changed`` is whether the object's content differs from what was read:
server-managed bookkeeping (resourceVersion, generation, managedFields, status) does not count. A no-op
apply is therefore ``changed=false`` in both modes, and a dry run reports exactly what a real run would do.

Secrets never leave here with their values: their before/after copies have every value replaced.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import quote

from ansible_collections.userservice.deploy.plugins.module_utils.client import concurrently
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ReleaseError,
)

APPLY_PATCH = "application/apply-patch+yaml"
HIDDEN = "<hidden>"

# (apiVersion, kind) -> (plural, namespaced) for what the roles render; other kinds are discovered.
KNOWN_KINDS: Dict[Tuple[str, str], Tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ("httproutes", True),
}

# Fields the API server keeps for itself: a difference in them is not a change the manifest made.
_SERVER_METADATA = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp", "selfLink")


class Target(NamedTuple):
    """Where one manifest lives in the API."""

    kind: str
    name: str
    namespace: Optional[str]
    path: str

    @property
    def label(self) -> str:
        return "%s/%s" % (self.kind, self.name)


def _api_prefix(api_version: str) -> str:
    return "/api/%s" % api_version if "/" not in api_version else "/apis/%s" % api_version


def resource_of(
    client: Any, api_version: str, kind: str, cache: Dict[str, Dict[str, Tuple[str, bool]]]
) -> Tuple[str, bool]:
    """The plural and scope of a kind: from KNOWN_KINDS, else from the API server's discovery of its
    apiVersion (one read per apiVersion, cached in ``cache``)."""
    if (api_version, kind) in KNOWN_KINDS:
        return KNOWN_KINDS[(api_version, kind)]
    if api_version not in cache:
        try:
            listing = client.get_path(_api_prefix(api_version), "discover", api_version)
        except NotFoundError as exc:
            raise ReleaseError(
                "the API server does not serve %s" % api_version,
                kind=kind,
                expected="an apiVersion the cluster serves (is its CRD installed?)",
                seen="404 for %s" % _api_prefix(api_version),
            ) from exc
        cache[api_version] = {
            resource["kind"]: (resource["name"], bool(resource.get("namespaced")))
            for resource in listing.get("resources") or []
            if resource.get("kind") and "/" not in resource.get("name", "/")
        }
    if kind not in cache[api_version]:
        raise ReleaseError(
            "the API server serves no kind %s in %s" % (kind, api_version),
            kind=kind,
            expected="a kind listed by the API server's discovery for %s" % api_version,
            seen=", ".join(sorted(cache[api_version])) or "none",
        )
    return cache[api_version][kind]


def target_of(
    client: Any, manifest: Dict[str, Any], namespace: str, cache: Dict[str, Dict[str, Tuple[str, bool]]]
) -> Target:
    kind = manifest["kind"]
    name = manifest["metadata"]["name"]
    plural, namespaced = resource_of(client, manifest["apiVersion"], kind, cache)
    prefix = _api_prefix(manifest["apiVersion"])
    if namespaced:
        obj_namespace = manifest["metadata"].get("namespace") or namespace
        path = "%s/namespaces/%s/%s/%s" % (prefix, quote(obj_namespace, safe=""), plural, quote(name, safe=""))
        return Target(kind, name, obj_namespace, path)
    return Target(kind, name, None, "%s/%s/%s" % (prefix, plural, quote(name, safe="")))


def comparable(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The object without what the server keeps for itself (the part a manifest can change)."""
    if obj is None:
        return None
    out = {key: value for key, value in obj.items() if key != "status"}
    metadata = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in _SERVER_METADATA}
    annotations = {
        key: value
        for key, value in (metadata.get("annotations") or {}).items()
        if key != "deployment.kubernetes.io/revision"
    }
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    out["metadata"] = metadata
    return out


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def redacted(obj: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A Secret with every value replaced (keys stay, so a diff still says which keys changed).

    A Secret last written by a client-side apply (kubectl apply, kubernetes.core without server_side_apply)
    carries its whole previous self, values included, in the last-applied annotation: that is hidden too."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = {key: HIDDEN for key in out[field]}
    annotations = (out.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = HIDDEN
    return out


class Applied(NamedTuple):
    target: Target
    action: str  # created | updated | unchanged | planned
    before: Optional[Dict[str, Any]]
    after: Optional[Dict[str, Any]]

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"

    def report(self) -> Dict[str, Any]:
        return {
            "kind": self.target.kind,
            "name": self.target.name,
            "namespace": self.target.namespace,
            "action": self.action,
        }

    def diff(self) -> Dict[str, Any]:
        return {
            "before_header": "%s (live)" % self.target.label,
            "after_header": "%s (applied)" % self.target.label,
            "before": redacted(comparable(self.before)) or {},
            "after": redacted(comparable(self.after)) or {},
        }


def read_live(client: Any, target: Target) -> Optional[Dict[str, Any]]:
    """The object as it is now, or None."""
    try:
        return client.get_path(target.path, "get", target.kind, target.namespace, target.name)
    except NotFoundError:
        return None


def apply_one(
    client: Any,
    target: Target,
    manifest: Dict[str, Any],
    field_manager: str,
    force_conflicts: bool,
    before: Optional[Dict[str, Any]],
) -> Applied:
    """Server-side apply one manifest read as ``before``; the client's dry_run makes it a dry run."""
    body = copy.deepcopy(manifest)
    if target.namespace is not None:
        body.setdefault("metadata", {})["namespace"] = target.namespace
    query = {"fieldManager": field_manager, "force": "true" if force_conflicts else "false"}
    if client.dry_run:
        query["dryRun"] = "All"
    try:
        after = client.send_path(
            "PATCH", target.path, "apply", target.kind, target.namespace, target.name, query, body, APPLY_PATCH
        )
    except ConflictError as exc:
        raise ReleaseError(
            "server-side apply of %s met fields another manager owns" % target.label,
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            expected="fields owned by field manager %s or by nobody" % field_manager,
            seen=exc.seen,
            hint="Find who changed them (kubectl get -o yaml --show-managed-fields); set force_conflicts "
            "(workload_force_conflicts) to take them over",
        ) from exc
    if before is None:
        action = "created"
    elif comparable(before) == comparable(after):
        action = "unchanged"
    else:
        action = "updated"
    return Applied(target, action, before, after)


def planned(target: Target, manifest: Dict[str, Any]) -> Applied:
    """An object check mode cannot dry-run (its namespace does not exist yet): reported as a create."""
    return Applied(target, "planned", None, manifest)


def namespace_exists(client: Any, namespace: str) -> bool:
    """Whether the namespace exists; a token that may not read namespaces (a deployer's) takes it as existing."""
    try:
        client.get_path("/api/v1/namespaces/%s" % quote(namespace, safe=""), "get", "Namespace", None, namespace)
    except NotFoundError:
        return False
    except ForbiddenError:
        return True
    return True


def apply_all(
    client: Any,
    namespace: str,
    manifests: List[Dict[str, Any]],
    field_manager: str,
    force_conflicts: bool,
    done: Optional[List[Applied]] = None,
) -> List[Applied]:
    """Apply in order. In check mode, objects in a namespace that does not exist yet are planned, not sent.

    Each result is appended to ``done`` as soon as it is known, so a caller whose run fails half way still
    reports what was already applied."""
    cache: Dict[str, Dict[str, Tuple[str, bool]]] = {}
    targets = [target_of(client, manifest, namespace, cache) for manifest in manifests]
    missing = set()
    if client.dry_run:
        namespaces = {t.namespace for t in targets if t.namespace}
        missing = {ns for ns in sorted(namespaces) if not namespace_exists(client, ns)}
    # The reads are independent and go out a few at a time; the applies keep the given order.
    sendable = [target for target in targets if target.namespace not in missing]
    live = dict(zip(sendable, concurrently(lambda target: read_live(client, target), sendable)))
    results: List[Applied] = [] if done is None else done
    for target, manifest in zip(targets, manifests):
        if target.namespace in missing:
            results.append(planned(target, manifest))
        else:
            results.append(apply_one(client, target, manifest, field_manager, force_conflicts, live[target]))
    return results
