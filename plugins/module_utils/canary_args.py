# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary module's options, its steps, and every check made on them before the cluster is contacted."""

from __future__ import annotations

import re
from typing import Any, Dict, List, NamedTuple, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import parse_checks
from ansible_collections.userservice.deploy.plugins.module_utils.bluegreen_args import (
    _digest_image,
    _dns_name,
    validate_autoscaler,
    validate_pod_template,
)
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import canonical_hash
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.userservice.deploy.plugins.module_utils.health import HealthSpec
from ansible_collections.userservice.deploy.plugins.module_utils.traffic_weights import ROUTERS

STATES = ["released", "promoted", "aborted", "monitored"]
ON_FAILURE = ["abort", "freeze"]
# A pause longer than a day is a forgotten release, not a plan.
MAX_PAUSE = 86400
COOKIE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
HEADER = re.compile(r"^[A-Za-z0-9-]+$")

ROUTER_OPTIONS: Dict[str, Dict[str, Any]] = {
    "type": dict(type="str", default="replicas", choices=list(ROUTERS)),
    "port": dict(type="raw"),
    "route": dict(type="str"),
    "gateway": dict(type="dict"),
    "gateways": dict(type="list", elements="str"),
    "hostnames": dict(type="list", elements="str"),
    "header": dict(type="dict"),
    "cookie": dict(type="str"),
}

CANARY_OPTIONS: Dict[str, Dict[str, Any]] = {
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
    "rollout_timeout": dict(type="float", default=600.0),
    "steps": dict(type="list", elements="dict", default=[]),
    "router": dict(type="dict", default={}, options=ROUTER_OPTIONS),
    "on_failure": dict(type="str", default="abort", choices=ON_FAILURE),
    "skip_steps": dict(type="bool", default=False),
    "post_promotion_analysis": dict(type="list", elements="str", default=[]),
    "history_limit": dict(type="int", default=10),
    "autoscaler": dict(type="dict"),
    "manage_autoscaler": dict(type="bool", default=True),
}


class Step(NamedTuple):
    """One step: exactly one of weight, pause (seconds) or approval, or analysis (check names)."""

    kind: str  # weight | pause | approval | analysis
    weight: Optional[int] = None
    seconds: Optional[float] = None
    checks: Optional[List[str]] = None

    def describe(self) -> str:
        if self.kind == "weight":
            return "weight %d" % self.weight
        if self.kind == "pause":
            return "pause %ss" % _seconds(self.seconds)
        if self.kind == "approval":
            return "pause for approval"
        return "analysis %s" % ", ".join(self.checks or [])


def _seconds(value: Optional[float]) -> str:
    return ("%.1f" % (value or 0)).rstrip("0").rstrip(".")


def _bad(option: str, expected: str, seen: Any) -> InvalidArgumentError:
    return InvalidArgumentError(option, expected, seen)


def parse_steps(raw: Any, check_names: List[str]) -> List[Step]:
    if not isinstance(raw, list) or not raw:
        raise _bad(
            "steps", "a non-empty list of steps such as [{weight: 10}, {pause: 60}, {analysis: [error-ratio]}]", raw
        )
    steps: List[Step] = []
    last_weight = 0
    for index, item in enumerate(raw):
        where = "steps[%d]" % index
        if not isinstance(item, dict) or len(item) != 1:
            raise _bad(where, "a dict with exactly one of weight, pause or analysis", item)
        key, value = next(iter(item.items()))
        if key == "weight":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _bad(where + ".weight", "an integer percentage 1-100", value)
            if not 1 <= value <= 100:
                raise _bad(where + ".weight", "an integer percentage 1-100", value)
            if value <= last_weight:
                raise _bad(
                    where + ".weight", "a weight above the previous one (%d): weights only grow" % last_weight, value
                )
            last_weight = value
            steps.append(Step("weight", weight=value))
        elif key == "pause":
            if value == "approval":
                steps.append(Step("approval"))
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_PAUSE:
                raise _bad(where + ".pause", "seconds (0 < s <= %d) or the word approval" % MAX_PAUSE, value)
            else:
                steps.append(Step("pause", seconds=float(value)))
        elif key == "analysis":
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise _bad(where + ".analysis", "a non-empty list of check names", value)
            if len(set(value)) != len(value):
                raise _bad(where + ".analysis", "each check named once", value)
            for name in value:
                if name not in check_names:
                    raise _bad(
                        where + ".analysis",
                        "names of checks defined in analysis.checks (%s)" % (", ".join(sorted(check_names)) or "none"),
                        name,
                    )
            steps.append(Step("analysis", checks=list(value)))
        else:
            raise _bad(where, "one of weight, pause or analysis", key)
        if key != "weight" and last_weight == 100 and steps[-1].kind != "analysis":
            raise _bad(where, "only analysis after weight 100 (the promotion follows it)", item)
    if not any(step.kind == "weight" for step in steps):
        raise _bad("steps", "at least one weight step: a canary that never gets traffic proves nothing", raw)
    if steps[0].kind == "approval":
        raise _bad(
            "steps[0].pause", "a weight or analysis before the first approval (nothing to approve yet)", "approval"
        )
    return steps


def steps_hash(steps: List[Step]) -> str:
    return canonical_hash([list(step) for step in steps])


def validate_router(router: Dict[str, Any]) -> None:
    kind = router.get("type") or "replicas"
    if kind == "replicas":
        for option in ("gateway", "gateways", "hostnames", "header", "cookie", "route"):
            if router.get(option):
                raise _bad(
                    "router.%s" % option,
                    "unset with router.type=replicas (headers need a router with routes)",
                    router[option],
                )
        return
    port = router.get("port")
    if port in (None, "") or (isinstance(port, int) and not 1 <= port <= 65535):
        raise _bad("router.port", "the Service port the route sends to (number or name)", port)
    if kind in ("istio",) and not (isinstance(port, int) or str(port).isdigit()):
        raise _bad("router.port", "a port number for router.type=istio", port)
    if kind == "gateway":
        gateway = router.get("gateway")
        if not isinstance(gateway, dict) or not gateway.get("name"):
            raise _bad(
                "router.gateway", "the Gateway to attach the HTTPRoute to: {name, namespace, sectionName}", gateway
            )
        unknown = set(gateway) - {"name", "namespace", "sectionName", "port", "group", "kind"}
        if unknown:
            raise _bad("router.gateway", "only name, namespace, sectionName, port, group, kind", sorted(unknown))
    if router.get("route") is not None:
        _dns_name("router.route", router["route"], 253)
    header = router.get("header")
    if header is not None:
        if (
            not isinstance(header, dict)
            or set(header) != {"name", "value"}
            or not HEADER.match(str(header.get("name")))
        ):
            raise _bad("router.header", "{name: <HTTP header name>, value: <exact value>}", header)
    cookie = router.get("cookie")
    if cookie is not None and not COOKIE.match(str(cookie)):
        raise _bad("router.cookie", "a cookie name (RFC 6265 token characters)", cookie)


def validate_params(params: Dict[str, Any]) -> List[Step]:
    """Every argument error, raised before anything is read from or written to the cluster; returns the steps."""
    _dns_name("namespace", params["namespace"])
    _dns_name("app", params["app"], 63 - len("-canary"))
    if params.get("service") is not None:
        _dns_name("service", params["service"])
    state = params["state"]
    if state == "released":
        for option in ("image", "version", "pod_template"):
            if params.get(option) in (None, "", {}):
                raise _bad(option, "a value (required when state=released)", params.get(option))
        _digest_image(params["image"])
        version = params["version"]
        if len(version) > 63 or not all(ch.isalnum() or ch in "-_." for ch in version) or not version[0].isalnum():
            raise _bad("version", "a label value: alphanumerics, '-', '_', '.', at most 63 characters", version)
        validate_pod_template(params["pod_template"], params.get("container_name") or params["app"])
    if params.get("skip_steps") and state != "promoted":
        raise _bad("skip_steps", "only with state=promoted", "state=%s" % state)
    if params["replicas"] < 1:
        raise _bad("replicas", "an integer >= 1", params["replicas"])
    if params["progress_deadline_seconds"] < 1:
        raise _bad("progress_deadline_seconds", "an integer >= 1", params["progress_deadline_seconds"])
    if params["rollout_timeout"] <= 0:
        raise _bad("rollout_timeout", "seconds > 0", params["rollout_timeout"])
    if params["history_limit"] < 1:
        raise _bad("history_limit", "an integer >= 1", params["history_limit"])
    validate_router(params.get("router") or {})
    validate_autoscaler(params.get("autoscaler"))
    HealthSpec(params.get("health")).validate()
    names = [check.name for check in parse_checks((params.get("analysis") or {}).get("checks"))]
    monitored = params.get("post_promotion_analysis") or []
    if state == "monitored" and not monitored:
        raise _bad("post_promotion_analysis", "the names of the checks to monitor with (state=monitored)", monitored)
    unknown = [name for name in monitored if name not in names]
    if unknown or len(set(monitored)) != len(monitored):
        raise _bad(
            "post_promotion_analysis",
            "names of checks in analysis.checks (%s), each once" % ", ".join(names),
            monitored,
        )
    if state == "released" or params.get("steps"):
        return parse_steps(params.get("steps"), names)
    return []
