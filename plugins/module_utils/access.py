# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask the API server whether the current credentials may do what a run needs.

One SelfSubjectAccessReview per verb/resource pair answers with the same
authorizer chain (RBAC, webhooks, ...) the real request would meet, so a run can
stop before its first write instead of half-way through. A SelfSubjectReview
names the identity the API server sees, which is what an operator must grant to.
Neither review is stored by the API server, so asking changes nothing.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.client import Response, concurrently, raise_for_status
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ApiError, InvalidArgumentError

SELF_SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SELF_SUBJECT_REVIEWS = "/apis/authentication.k8s.io/v1/selfsubjectreviews"

# The verbs Kubernetes authorizes on resources: the API verbs plus the special ones RBAC knows.
KNOWN_VERBS: Tuple[str, ...] = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "bind",
    "escalate",
    "impersonate",
    "use",
    "approve",
    "sign",
)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_RE = re.compile(r"^%s$" % _DNS_LABEL)
DNS_SUBDOMAIN_RE = re.compile(r"^%s(\.%s)*$" % (_DNS_LABEL, _DNS_LABEL))

PERMISSION_OPTIONS: Dict[str, Dict[str, Any]] = {
    "group": dict(type="str", required=True),
    "resource": dict(type="str", required=True),
    "subresource": dict(type="str"),
    "verbs": dict(type="list", elements="str", required=True),
}

OPTIONS: Dict[str, Dict[str, Any]] = {
    "namespace": dict(type="str", required=True),
    "permissions": dict(type="list", elements="dict", required=True, options=PERMISSION_OPTIONS),
    "fail_on_denied": dict(type="bool", default=True),
}

GRANT_HINT = (
    "Grant them (re-run the bootstrap with cluster-admin: playbooks/deploy.yml -e workload_bootstrap=true, "
    "see docs/rbac.md) or use credentials that have them."
)


class Pair(NamedTuple):
    """One verb on one resource (or subresource) of one API group."""

    verb: str
    group: str
    resource: str
    subresource: str

    @property
    def label(self) -> str:
        """``patch deployments.apps``, ``get pods/proxy``: the resource written as kubectl and RBAC errors do."""
        name = self.resource + ("." + self.group if self.group else "")
        if self.subresource:
            name += "/" + self.subresource
        return "%s %s" % (self.verb, name)


class Identity(NamedTuple):
    user: Optional[str]
    groups: List[str]


# ---------------------------------------------------------------------------
# Validating the options and expanding them into pairs
# ---------------------------------------------------------------------------


def _check_name(option: str, value: Any, pattern: "re.Pattern[str]", max_length: int, expected: str) -> None:
    if not isinstance(value, str) or len(value) > max_length or not pattern.match(value):
        raise InvalidArgumentError(option, expected, value)


def validate_namespace(namespace: Any) -> None:
    _check_name("namespace", namespace, DNS_LABEL_RE, 63, "a namespace name (a DNS label such as user-service-staging)")


def _validate_permission(index: int, permission: Dict[str, Any]) -> Tuple[str, str, str, List[str]]:
    where = "permissions[%d]" % index
    group = permission.get("group")
    if group in ("core", "v1"):
        raise InvalidArgumentError(
            "%s.group" % where, 'the API group of the resource; the core group is written ""', group
        )
    if group != "":
        _check_name(
            "%s.group" % where,
            group,
            DNS_SUBDOMAIN_RE,
            253,
            'an API group without version (a DNS subdomain such as apps or networking.k8s.io), or "" for the core group',
        )
    resource = permission.get("resource")
    _check_name(
        "%s.resource" % where,
        resource,
        DNS_LABEL_RE,
        63,
        "a lowercase plural resource name such as configmaps or deployments (a DNS label, no group or subresource)",
    )
    subresource = permission.get("subresource") or ""
    if subresource:
        _check_name(
            "%s.subresource" % where,
            subresource,
            DNS_LABEL_RE,
            63,
            "a lowercase subresource name such as status, scale or proxy",
        )
    verbs = permission.get("verbs")
    if not isinstance(verbs, list) or not verbs:
        raise InvalidArgumentError(
            "%s.verbs" % where,
            "a non-empty list of verbs such as get, list, watch, create, update, patch, delete",
            verbs,
        )
    for verb in verbs:
        if verb not in KNOWN_VERBS:
            raise InvalidArgumentError("%s.verbs" % where, "each verb one of %s" % ", ".join(KNOWN_VERBS), verb)
    return group, resource, subresource, list(verbs)


def expand_pairs(permissions: Any) -> List[Pair]:
    """Every distinct verb/resource pair the permissions ask for, in the order first asked."""
    if not isinstance(permissions, list) or not permissions:
        raise InvalidArgumentError("permissions", "a non-empty list of {group, resource, verbs} entries", permissions)
    pairs: List[Pair] = []
    seen = set()
    for index, permission in enumerate(permissions):
        if not isinstance(permission, dict):
            raise InvalidArgumentError("permissions[%d]" % index, "a dict with group, resource and verbs", permission)
        group, resource, subresource, verbs = _validate_permission(index, permission)
        for verb in verbs:
            pair = Pair(verb, group, resource, subresource)
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    return pairs


# ---------------------------------------------------------------------------
# Talking to the API server
# ---------------------------------------------------------------------------


def create_cluster_scoped(client: Any, path: str, body: Dict[str, Any]) -> Response:
    """POST ``body`` to a cluster-scoped collection through the client's transport; the raw answer.

    Never with ``dryRun``: the reviews are answered and not stored, whatever the check mode.
    """
    return client.transport.request(
        "POST", path, query=None, body=body, content_type="application/json", timeout=client.request_timeout
    )


def _json_or_error(response: Response, verb: str, kind: str) -> Dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as exc:
        raise ApiError(
            "the API server answered the %s with something that is not JSON" % kind,
            status=response.status,
            verb=verb,
            kind=kind,
            seen=response.text(120),
        ) from exc
    return payload if isinstance(payload, dict) else {}


def _raise_unauthorized(response: Response, kind: str) -> None:
    if response.status != 401:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = None
    detail = payload.get("message") if isinstance(payload, dict) else None
    raise ApiError(
        "the API server rejected the credentials (HTTP 401), so no permission could be checked",
        status=401,
        verb="create",
        kind=kind,
        seen=detail or response.text(200) or None,
        hint="Check api_key / kubeconfig / client_cert (or K8S_AUTH_API_KEY, K8S_AUTH_KUBECONFIG); a token from "
        "`kubectl create token` expires",
    )


def read_identity(client: Any) -> Identity:
    """Who the API server takes the credentials for; unknown (``None``) where it cannot say.

    SelfSubjectReview is GA in Kubernetes 1.28; an older server answers 404 and a
    server that restricts it answers 403. Neither stops the permission check.
    """
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    response = create_cluster_scoped(client, SELF_SUBJECT_REVIEWS, body)
    _raise_unauthorized(response, "SelfSubjectReview")
    if response.status in (403, 404):
        return Identity(None, [])
    raise_for_status(response, "create", "SelfSubjectReview", None, None)
    info = (_json_or_error(response, "create", "SelfSubjectReview").get("status") or {}).get("userInfo") or {}
    return Identity(info.get("username") or None, list(info.get("groups") or []))


def review_pair(client: Any, namespace: str, pair: Pair) -> Tuple[bool, str]:
    """``(allowed, reason)`` from one SelfSubjectAccessReview."""
    attributes = {"namespace": namespace, "verb": pair.verb, "group": pair.group, "resource": pair.resource}
    if pair.subresource:
        attributes["subresource"] = pair.subresource
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    response = create_cluster_scoped(client, SELF_SUBJECT_ACCESS_REVIEWS, body)
    _raise_unauthorized(response, "SelfSubjectAccessReview")
    raise_for_status(response, "create", "SelfSubjectAccessReview", None, None)
    status = _json_or_error(response, "create", "SelfSubjectAccessReview").get("status") or {}
    # evaluationError says an authorizer failed to evaluate (a broken webhook, a missing Role referenced by a
    # binding); it matters most exactly when the answer is "no", so it travels with the reason.
    reason = "; ".join(part for part in (status.get("reason"), status.get("evaluationError")) if part)
    return bool(status.get("allowed")), reason


def review_access(client: Any, namespace: str, pairs: Sequence[Pair], identify: bool = True) -> Dict[str, Any]:
    """The module's result: who, how many pairs, which are allowed and which denied.

    With ``identify=False`` the user is asked for only when a pair is denied (the message names them)."""
    identity = read_identity(client) if identify else Identity(None, [])
    allowed: List[str] = []
    denied: List[Dict[str, Any]] = []
    # The reviews are independent reads: a few in flight at once, answers kept in the order asked.
    answers = concurrently(lambda pair: review_pair(client, namespace, pair), pairs)
    for pair, (ok, reason) in zip(pairs, answers):
        if ok:
            allowed.append(pair.label)
        else:
            denied.append(
                {
                    "verb": pair.verb,
                    "group": pair.group,
                    "resource": pair.resource,
                    "subresource": pair.subresource or None,
                    "namespace": namespace,
                    "reason": reason,
                }
            )
    if denied and not identify:
        identity = read_identity(client)
    return {
        "changed": False,
        "user": identity.user,
        "groups": identity.groups,
        "checked": len(pairs),
        "allowed": allowed,
        "denied": denied,
    }


def denied_message(result: Dict[str, Any], namespace: str) -> str:
    """One sentence naming the identity, the namespace and every missing pair."""
    labels = [
        Pair(entry["verb"], entry["group"], entry["resource"], entry.get("subresource") or "").label
        for entry in result["denied"]
    ]
    who = 'user "%s"' % result["user"] if result.get("user") else "the current credentials (user unknown)"
    return '%s may not, in namespace "%s": %s. %s' % (who, namespace, ", ".join(labels), GRANT_HINT)
