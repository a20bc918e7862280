# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.access import (
    SELF_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_REVIEWS,
    Pair,
    denied_message,
    expand_pairs,
    review_access,
    validate_namespace,
)
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient, Response
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ApiError, InvalidArgumentError

NS = "user-service-staging"
DEPLOYER = "system:serviceaccount:user-service-staging:user-service-deployer"
DEPLOYER_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:user-service-staging", "system:authenticated"]


STATUS_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalError"}


def status_response(code: int, reason: str, message: str) -> Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message}
    return Response(code, json.dumps(body).encode(), "application/json")


class FakeAuthorizer:
    """The API server's two review endpoints, answering from a set of granted (verb, group, resource, sub) tuples."""

    def __init__(
        self,
        granted: Set[Tuple[str, str, str, str]],
        user: Optional[str] = DEPLOYER,
        identity_status: int = 201,
        review_status: int = 201,
        reasons: Optional[Dict[Tuple[str, str, str, str], Tuple[str, str]]] = None,
    ) -> None:
        self.granted = granted
        self.user = user
        self.identity_status = identity_status
        self.review_status = review_status
        self.reasons = reasons or {}
        self.requests: List[Dict[str, Any]] = []

    def request(
        self,
        method: str,
        path: str,
        query: Optional[Dict[str, Any]] = None,
        body: Any = None,
        content_type: Optional[str] = None,
        timeout: float = 30,
    ) -> Response:
        self.requests.append(dict(method=method, path=path, query=query, body=body, content_type=content_type))
        if path == SELF_SUBJECT_REVIEWS:
            if self.identity_status != 201:
                reason = STATUS_REASONS[self.identity_status]
                return status_response(self.identity_status, reason, reason)
            info = {"username": self.user, "uid": "1234", "groups": DEPLOYER_GROUPS}
            return Response(201, json.dumps(dict(body, status={"userInfo": info})).encode())
        if path == SELF_SUBJECT_ACCESS_REVIEWS:
            if self.review_status != 201:
                reason = STATUS_REASONS[self.review_status]
                return status_response(self.review_status, reason, reason)
            attrs = body["spec"]["resourceAttributes"]
            key = (attrs["verb"], attrs["group"], attrs["resource"], attrs.get("subresource", ""))
            allowed = key in self.granted
            reason, evaluation_error = self.reasons.get(key, ("", ""))
            answer: Dict[str, Any] = {"allowed": allowed}
            if reason:
                answer["reason"] = reason
            if evaluation_error:
                answer["evaluationError"] = evaluation_error
            return Response(201, json.dumps(dict(body, status=answer)).encode())
        return status_response(404, "NotFound", "no such path %s" % path)

    def reviews(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["path"] == SELF_SUBJECT_ACCESS_REVIEWS]


PERMISSIONS = [
    {"group": "", "resource": "configmaps", "verbs": ["get", "patch"]},
    {"group": "apps", "resource": "deployments", "verbs": ["get", "patch"]},
    {"group": "", "resource": "pods", "subresource": "proxy", "verbs": ["get"]},
]
ALL_GRANTED = {
    ("get", "", "configmaps", ""),
    ("patch", "", "configmaps", ""),
    ("get", "apps", "deployments", ""),
    ("patch", "apps", "deployments", ""),
    ("get", "", "pods", "proxy"),
}


def run(fake: FakeAuthorizer, permissions: Any = None) -> Dict[str, Any]:
    client = KubeClient(fake, request_timeout=7)
    return review_access(client, NS, expand_pairs(PERMISSIONS if permissions is None else permissions))


def test_all_allowed_lists_every_pair_and_denies_none() -> None:
    fake = FakeAuthorizer(ALL_GRANTED)
    result = run(fake)
    assert result == {
        "changed": False,
        "user": DEPLOYER,
        "groups": DEPLOYER_GROUPS,
        "checked": 5,
        "allowed": [
            "get configmaps",
            "patch configmaps",
            "get deployments.apps",
            "patch deployments.apps",
            "get pods/proxy",
        ],
        "denied": [],
    }


def test_each_review_is_one_post_with_the_resource_attributes_and_no_dry_run() -> None:
    fake = FakeAuthorizer(ALL_GRANTED)
    run(fake)
    assert fake.requests[0]["path"] == SELF_SUBJECT_REVIEWS
    reviews = fake.reviews()
    assert {r["method"] for r in reviews} == {"POST"}
    assert all(not r["query"] for r in fake.requests)
    assert reviews[1]["body"] == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": NS, "verb": "patch", "group": "", "resource": "configmaps"}},
    }
    assert reviews[4]["body"]["spec"]["resourceAttributes"] == {
        "namespace": NS,
        "verb": "get",
        "group": "",
        "resource": "pods",
        "subresource": "proxy",
    }


def test_denied_pairs_are_returned_and_named_in_the_message() -> None:
    permissions = PERMISSIONS + [
        {"group": "networking.k8s.io", "resource": "networkpolicies", "verbs": ["patch"]},
        {"group": "", "resource": "secrets", "verbs": ["delete"]},
    ]
    reasons = {("delete", "", "secrets", ""): ("", 'role.rbac.authorization.k8s.io "gone" not found')}
    fake = FakeAuthorizer(ALL_GRANTED, reasons=reasons)
    result = run(fake, permissions)
    assert result["checked"] == 7
    assert len(result["allowed"]) == 5
    assert result["denied"] == [
        {
            "verb": "patch",
            "group": "networking.k8s.io",
            "resource": "networkpolicies",
            "subresource": None,
            "namespace": NS,
            "reason": "",
        },
        {
            "verb": "delete",
            "group": "",
            "resource": "secrets",
            "subresource": None,
            "namespace": NS,
            "reason": 'role.rbac.authorization.k8s.io "gone" not found',
        },
    ]
    assert denied_message(result, NS) == (
        'user "%s" may not, in namespace "%s": patch networkpolicies.networking.k8s.io, delete secrets. '
        "Grant them (re-run the bootstrap with cluster-admin: playbooks/deploy.yml -e workload_bootstrap=true, "
        "see docs/rbac.md) or use credentials that have them." % (DEPLOYER, NS)
    )


def test_denied_subresource_is_named_with_its_group() -> None:
    fake = FakeAuthorizer(set(), reasons={("patch", "apps", "deployments", "scale"): ("no RBAC policy matched", "")})
    result = run(fake, [{"group": "apps", "resource": "deployments", "subresource": "scale", "verbs": ["patch"]}])
    assert result["denied"][0]["subresource"] == "scale"
    assert result["denied"][0]["reason"] == "no RBAC policy matched"
    assert "patch deployments.apps/scale." in denied_message(result, NS)


def test_reason_and_evaluation_error_are_both_kept() -> None:
    key = ("get", "", "secrets", "")
    fake = FakeAuthorizer(set(), reasons={key: ("webhook said no", "webhook timed out")})
    result = run(fake, [{"group": "", "resource": "secrets", "verbs": ["get"]}])
    assert result["denied"][0]["reason"] == "webhook said no; webhook timed out"


@pytest.mark.parametrize("code", [403, 404])
def test_identity_unknown_when_self_subject_review_is_refused_or_missing(code: int) -> None:
    fake = FakeAuthorizer(set(), identity_status=code)
    result = run(fake, [{"group": "", "resource": "secrets", "verbs": ["delete"]}])
    assert (result["user"], result["groups"]) == (None, [])
    assert result["denied"][0]["resource"] == "secrets"
    assert denied_message(result, NS).startswith(
        'the current credentials (user unknown) may not, in namespace "%s": delete secrets.' % NS
    )


def test_rejected_credentials_fail_with_a_credentials_error() -> None:
    fake = FakeAuthorizer(ALL_GRANTED, identity_status=401)
    with pytest.raises(ApiError) as info:
        run(fake)
    assert info.value.status == 401
    assert "rejected the credentials" in str(info.value)
    assert "api_key" in str(info.value)
    assert "; saw Unauthorized." in str(info.value)
    assert fake.reviews() == []


def test_rejected_credentials_on_a_review_fail_too() -> None:
    fake = FakeAuthorizer(ALL_GRANTED, review_status=401)
    with pytest.raises(ApiError, match="rejected the credentials"):
        run(fake)


def test_other_review_errors_are_raised_not_counted_as_denied() -> None:
    fake = FakeAuthorizer(ALL_GRANTED, review_status=500)
    with pytest.raises(ApiError) as info:
        run(fake)
    assert info.value.status == 500


def test_duplicate_pairs_are_checked_once_in_first_asked_order() -> None:
    permissions = [
        {"group": "", "resource": "configmaps", "verbs": ["get", "list", "get"]},
        {"group": "apps", "resource": "deployments", "verbs": ["get"]},
        {"group": "", "resource": "configmaps", "subresource": None, "verbs": ["list", "patch"]},
        {"group": "", "resource": "pods", "subresource": "proxy", "verbs": ["get"]},
        {"group": "", "resource": "pods", "verbs": ["get"]},
    ]
    assert expand_pairs(permissions) == [
        Pair("get", "", "configmaps", ""),
        Pair("list", "", "configmaps", ""),
        Pair("get", "apps", "deployments", ""),
        Pair("patch", "", "configmaps", ""),
        Pair("get", "", "pods", "proxy"),
        Pair("get", "", "pods", ""),
    ]
    fake = FakeAuthorizer(set())
    assert run(fake, permissions)["checked"] == 6
    assert len(fake.reviews()) == 6


@pytest.mark.parametrize(
    "permissions, option, expected",
    [
        ([], "permissions", "a non-empty list"),
        (["configmaps"], "permissions[0]", "a dict with group, resource and verbs"),
        (
            PERMISSIONS[:2] + [{"group": "", "resource": "pods", "verbs": []}],
            "permissions[2].verbs",
            "a non-empty list of verbs such as get, list, watch, create, update, patch, delete",
        ),
        ([{"group": "", "resource": "pods", "verbs": ["read"]}], "permissions[0].verbs", "each verb one of get"),
        ([{"group": "", "resource": "pods", "verbs": ["GET"]}], "permissions[0].verbs", "each verb one of get"),
        ([{"group": "", "resource": "Pods", "verbs": ["get"]}], "permissions[0].resource", "lowercase plural"),
        ([{"group": "apps", "resource": "deployments.apps", "verbs": ["get"]}], "permissions[0].resource", "a DNS"),
        ([{"group": "", "resource": "pods/proxy", "verbs": ["get"]}], "permissions[0].resource", "no group or sub"),
        ([{"group": "", "resource": "", "verbs": ["get"]}], "permissions[0].resource", "lowercase plural"),
        (
            [{"group": "apps/v1", "resource": "deployments", "verbs": ["get"]}],
            "permissions[0].group",
            "without version",
        ),
        ([{"group": "Apps", "resource": "deployments", "verbs": ["get"]}], "permissions[0].group", "DNS subdomain"),
        ([{"group": "core", "resource": "pods", "verbs": ["get"]}], "permissions[0].group", 'written ""'),
        ([{"group": None, "resource": "pods", "verbs": ["get"]}], "permissions[0].group", '"" for the core group'),
        (
            [{"group": "", "resource": "pods", "subresource": "Log", "verbs": ["get"]}],
            "permissions[0].subresource",
            "subresource name",
        ),
    ],
)
def test_invalid_permissions_name_the_option(permissions: Any, option: str, expected: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        expand_pairs(permissions)
    assert info.value.option == option
    assert str(info.value).startswith("invalid value for option %s; expected " % option)
    assert expected in str(info.value)


def test_empty_verbs_error_shows_what_was_seen() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        expand_pairs(PERMISSIONS[:2] + [{"group": "", "resource": "pods", "verbs": []}])
    assert str(info.value).endswith("; saw [].")


@pytest.mark.parametrize("namespace", ["", "User-Service", "a" * 64, "user_service", None])
def test_invalid_namespace_is_refused(namespace: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="option namespace"):
        validate_namespace(namespace)


def test_valid_namespace_passes() -> None:
    validate_namespace(NS)


def test_requests_use_the_client_timeout_and_json() -> None:
    seen: List[Tuple[str, Optional[str], float]] = []

    class Recording(FakeAuthorizer):
        def request(
            self,
            method: str,
            path: str,
            query: Any = None,
            body: Any = None,
            content_type: Any = None,
            timeout: float = 30,
        ) -> Response:
            seen.append((path, content_type, timeout))
            return super().request(method, path, query, body, content_type, timeout)

    run(Recording(ALL_GRANTED), [{"group": "", "resource": "pods", "verbs": ["get"]}])
    assert seen == [(SELF_SUBJECT_REVIEWS, "application/json", 7), (SELF_SUBJECT_ACCESS_REVIEWS, "application/json", 7)]
