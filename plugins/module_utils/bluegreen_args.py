# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bluegreen module's options and every check made on them before the cluster is contacted."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import parse_checks
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.userservice.deploy.plugins.module_utils.health import HealthSpec

STATES = ["released", "previewed", "promoted", "rolled_back", "aborted", "monitored"]

BLUEGREEN_OPTIONS: Dict[str, Dict[str, Any]] = {
    "namespace": dict(type="str", required=True),
    "app": dict(type="str", default="user-service"),
    "state": dict(type="str", default="released", choices=STATES),
    "image": dict(type="str"),
    "version": dict(type="str"),
    "pod_template": dict(type="dict"),
    "container_name": dict(type="str"),
    "replicas": dict(type="int", default=1),
    "progress_deadline_seconds": dict(type="int", default=600),
    "config_refs": dict(type="list", elements="str", default=[]),
    "service": dict(type="str"),
    "preview_service": dict(type="str"),
    "rollout_timeout": dict(type="float", default=600.0),
    "verify_timeout": dict(type="float", default=60.0),
    "scale_down_delay": dict(type="int", default=30),
    "on_failure": dict(type="str", default="scale_down", choices=["scale_down", "keep"]),
    "pre_promotion_analysis": dict(type="list", elements="str", default=[]),
    "post_promotion_analysis": dict(type="list", elements="str", default=[]),
    "history_limit": dict(type="int", default=10),
    "rollback_to": dict(type="str"),
    "post_switch_watch": dict(type="float", default=10.0),
    "autoscaler": dict(type="dict"),
    "manage_autoscaler": dict(type="bool", default=True),
}

DNS_LABEL = "abcdefghijklmnopqrstuvwxyz0123456789-"


def _bad(option: str, expected: str, seen: Any) -> InvalidArgumentError:
    return InvalidArgumentError(option, expected, seen)


def _dns_name(option: str, value: Any, max_len: int = 63) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_len
        or any(ch not in DNS_LABEL for ch in value)
        or value[0] == "-"
        or value[-1] == "-"
    ):
        raise _bad(option, "a DNS-1123 label (lowercase letters, digits, '-', at most %d characters)" % max_len, value)
    return value


def _digest_image(value: Any) -> str:
    if not isinstance(value, str) or "@sha256:" not in value:
        raise _bad("image", "an image reference pinned by digest (registry/repository@sha256:<64 hex>)", value)
    name, digest = value.rsplit("@sha256:", 1)
    if not name or len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        raise _bad("image", "an image reference pinned by digest (registry/repository@sha256:<64 hex>)", value)
    return value


def validate_params(params: Dict[str, Any]) -> None:
    """Every argument error, raised before anything is read from or written to the cluster."""
    _dns_name("namespace", params["namespace"])
    # Slot Deployments are named <app>-blue / <app>-green.
    _dns_name("app", params["app"], 63 - len("-green"))
    for option in ("service", "preview_service"):
        if params.get(option) is not None:
            _dns_name(option, params[option])
    if params.get("preview_service") and params["preview_service"] == (params.get("service") or params["app"]):
        raise _bad("preview_service", "a Service other than the active one", params["preview_service"])
    state = params["state"]
    if state in ("released", "previewed"):
        for option in ("image", "version", "pod_template"):
            if params.get(option) in (None, "", {}):
                raise _bad(option, "a value (required when state=%s)" % state, params.get(option))
        _digest_image(params["image"])
        version = params["version"]
        if len(version) > 63 or not all(ch.isalnum() or ch in "-_." for ch in version) or not version[0].isalnum():
            raise _bad("version", "a label value: alphanumerics, '-', '_', '.', at most 63 characters", version)
        validate_pod_template(params["pod_template"], params.get("container_name") or params["app"])
    if params["replicas"] < 1:
        raise _bad("replicas", "an integer >= 1", params["replicas"])
    if params["progress_deadline_seconds"] < 1:
        raise _bad("progress_deadline_seconds", "an integer >= 1", params["progress_deadline_seconds"])
    for option in ("rollout_timeout", "verify_timeout"):
        if params[option] <= 0:
            raise _bad(option, "seconds > 0", params[option])
    if params["scale_down_delay"] < -1:
        raise _bad(
            "scale_down_delay", "seconds >= 0, or -1 to keep the previous slot running", params["scale_down_delay"]
        )
    if params["history_limit"] < 1:
        raise _bad("history_limit", "an integer >= 1", params["history_limit"])
    names = {check.name for check in parse_checks((params.get("analysis") or {}).get("checks"))}
    for option in ("pre_promotion_analysis", "post_promotion_analysis"):
        for name in params.get(option) or []:
            if name not in names:
                raise _bad(
                    option,
                    "names of checks defined in analysis.checks (%s)" % (", ".join(sorted(names)) or "none"),
                    name,
                )
    if params.get("post_switch_watch") is not None and params["post_switch_watch"] < 0:
        raise _bad("post_switch_watch", "seconds >= 0 (0 turns the watch off)", params["post_switch_watch"])
    if params.get("rollback_to") is not None and state != "rolled_back":
        raise _bad("rollback_to", "only with state=rolled_back", "state=%s" % state)
    if params.get("rollback_to") is not None and not str(params["rollback_to"]).strip():
        raise _bad("rollback_to", "a version or revision recorded for a slot", params["rollback_to"])
    validate_autoscaler(params.get("autoscaler"))
    HealthSpec(params.get("health")).validate()


def validate_autoscaler(spec: Any) -> None:
    """An autoscaling/v2 HorizontalPodAutoscaler spec; the module fills in scaleTargetRef per slot."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise _bad("autoscaler", "an autoscaling/v2 HorizontalPodAutoscaler spec (a dict)", type(spec).__name__)
    if "scaleTargetRef" in spec:
        raise _bad("autoscaler.scaleTargetRef", "absent: the module points the HPA at the serving slot", "set")
    high, low = spec.get("maxReplicas"), spec.get("minReplicas", 1)
    if not isinstance(high, int) or isinstance(high, bool) or high < 1:
        raise _bad("autoscaler.maxReplicas", "an integer >= 1", high)
    if not isinstance(low, int) or isinstance(low, bool) or not 1 <= low <= high:
        raise _bad("autoscaler.minReplicas", "an integer between 1 and maxReplicas (%s)" % high, low)


def validate_pod_template(template: Any, container: str) -> None:
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        raise _bad(
            "pod_template", "a Pod template: a dict with 'spec' (and optional 'metadata')", type(template).__name__
        )
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers:
        raise _bad("pod_template.spec.containers", "a non-empty list of containers", containers)
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if container not in names:
        raise _bad(
            "container_name", "the name of a container in pod_template (%s)" % ", ".join(map(str, names)), container
        )
