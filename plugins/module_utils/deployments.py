# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Deployments a release runs (blue/green slots, later canary tracks): names, labels, the desired
object, and what a live one runs. Nothing here talks to the cluster."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Optional

NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SLOT_LABEL = "deploy.userservice.io/slot"
TRACK_LABEL = "deploy.userservice.io/track"
# Set by the Deployment controller on every pod of a ReplicaSet: it tells a rolling Deployment's pods apart.
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
TEMPLATE_HASH_ANNOTATION = "deploy.userservice.io/template-hash"
# The release a Deployment runs, whatever slot or track carries it (the template without our slot/track labels).
RELEASE_HASH_ANNOTATION = "deploy.userservice.io/release-hash"
MANAGER = "userservice.deploy"


def canonical_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def deployment_name(app: str, slot: str) -> str:
    return "%s-%s" % (app, slot)


def slot_selector(app: str, slot: str) -> Dict[str, str]:
    return {NAME_LABEL: app, SLOT_LABEL: slot}


def track_selector(app: str, track: str) -> Dict[str, str]:
    return {NAME_LABEL: app, TRACK_LABEL: track}


def build_deployment(params: Dict[str, Any], slot: str) -> Dict[str, Any]:
    """The desired slot Deployment: the caller's pod template with our labels and the digest pinned."""
    return _build(
        params, deployment_name(params["app"], slot), slot_selector(params["app"], slot), {}, SLOT_LABEL, slot
    )


def build_track(params: Dict[str, Any], track: str, pod_labels: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The desired canary-strategy Deployment of ``track`` (stable or canary), ``params['replicas']`` pods."""
    app = params["app"]
    return _build(params, deployment_name(app, track), track_selector(app, track), pod_labels or {}, TRACK_LABEL, track)


def _build(
    params: Dict[str, Any],
    name: str,
    selector: Dict[str, str],
    pod_labels: Dict[str, str],
    role_label: str,
    role: str,
) -> Dict[str, Any]:
    app = params["app"]
    template = json.loads(json.dumps(params["pod_template"]))
    meta = template.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels[VERSION_LABEL] = params["version"]
    labels[MANAGED_BY_LABEL] = MANAGER
    container = params.get("container_name") or app
    for spec in template["spec"]["containers"]:
        if spec.get("name") == container:
            spec["image"] = params["image"]
    # What the release is, whichever slot or track carries it: a canary promoted to stable is the same release.
    release = canonical_hash(
        {
            "template": dict(template, metadata=dict(meta, labels=labels)),
            "deadline": params["progress_deadline_seconds"],
        }
    )
    labels.update(selector)
    labels.update(pod_labels)
    meta["labels"] = labels
    spec = {
        "replicas": params["replicas"],
        "progressDeadlineSeconds": params["progress_deadline_seconds"],
        "revisionHistoryLimit": 2,
        "selector": {"matchLabels": selector},
        "template": template,
    }
    template_hash = canonical_hash({"template": template, "deadline": spec["progressDeadlineSeconds"]})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": params["namespace"],
            "labels": {
                NAME_LABEL: app,
                role_label: role,
                VERSION_LABEL: params["version"],
                MANAGED_BY_LABEL: MANAGER,
            },
            "annotations": {TEMPLATE_HASH_ANNOTATION: template_hash, RELEASE_HASH_ANNOTATION: release},
        },
        "spec": spec,
    }


def release_hash_of(deployment: Optional[Dict[str, Any]]) -> Optional[str]:
    if deployment is None:
        return None
    return ((deployment.get("metadata") or {}).get("annotations") or {}).get(RELEASE_HASH_ANNOTATION)


def replicas_of(deployment: Optional[Dict[str, Any]]) -> Optional[int]:
    if deployment is None:
        return None
    return int((deployment.get("spec") or {}).get("replicas") or 0)


def template_hash_of(deployment: Optional[Dict[str, Any]]) -> Optional[str]:
    if deployment is None:
        return None
    return ((deployment.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH_ANNOTATION)


def image_of(deployment: Optional[Dict[str, Any]], container: str) -> Optional[str]:
    if deployment is None:
        return None
    for spec in (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return spec.get("image")
    return None


def is_warm(deployment: Optional[Dict[str, Any]]) -> bool:
    """The slot runs all its replicas, available: traffic can move to it with no new pods."""
    if deployment is None:
        return False
    want = replicas_of(deployment) or 0
    status = deployment.get("status") or {}
    return (
        want > 0
        and int(status.get("availableReplicas") or 0) >= want
        and int(status.get("updatedReplicas") or 0) >= want
    )


def pod_labels_of(deployment: Optional[Dict[str, Any]]) -> Dict[str, str]:
    if deployment is None:
        return {}
    return dict(((((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {})


def selects(selector: Optional[Dict[str, str]], labels: Dict[str, str]) -> bool:
    """Whether a Service selector picks pods with these labels (an empty selector picks nothing)."""
    return bool(selector) and all(labels.get(key) == value for key, value in (selector or {}).items())


def available_replicas_of(deployment: Optional[Dict[str, Any]]) -> int:
    return int(((deployment or {}).get("status") or {}).get("availableReplicas") or 0)
