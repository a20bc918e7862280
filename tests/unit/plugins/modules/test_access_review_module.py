# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""access_review through its main(), with the API server replaced at the HTTP boundary."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.plugins.modules import access_review
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.test_access import (
    ALL_GRANTED,
    DEPLOYER,
    NS,
    PERMISSIONS,
    FakeAuthorizer,
)

DENIED_EXTRA = [
    {"group": "networking.k8s.io", "resource": "networkpolicies", "verbs": ["patch"]},
    {"group": "", "resource": "secrets", "verbs": ["delete"]},
]


class Server:
    """Holds the fake the next run talks to, and which dry_run the module asked for."""

    def __init__(self) -> None:
        self.fake = FakeAuthorizer(set(ALL_GRANTED))
        self.dry_runs: List[bool] = []


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    holder = Server()

    def from_params(cls: Any, params: Dict[str, Any], dry_run: bool = False) -> KubeClient:
        holder.dry_runs.append(dry_run)
        return KubeClient(holder.fake)

    monkeypatch.setattr(KubeClient, "from_params", classmethod(from_params))
    return holder


def run_module(capsys: pytest.CaptureFixture[str], **args: Any) -> Dict[str, Any]:
    params = dict({"namespace": NS, "permissions": PERMISSIONS}, **args)
    with patch_module_args(params), pytest.raises(SystemExit) as exit_info:
        access_review.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = exit_info.value.code
    return result


def test_all_allowed_passes(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys)
    assert result["rc"] == 0
    assert result.get("failed") is not True
    assert result["changed"] is False
    assert result["user"] == DEPLOYER
    assert result["checked"] == 5
    assert result["denied"] == []
    assert "patch deployments.apps" in result["allowed"]


def test_denied_fails_naming_each_missing_permission(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, permissions=PERMISSIONS + DENIED_EXTRA)
    assert result["rc"] == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"].startswith(
        'user "%s" may not, in namespace "%s": patch networkpolicies.networking.k8s.io, delete secrets. Grant them'
        % (DEPLOYER, NS)
    )
    assert [d["resource"] for d in result["denied"]] == ["networkpolicies", "secrets"]
    assert result["checked"] == 7


def test_denied_without_fail_on_denied_reports(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, permissions=PERMISSIONS + DENIED_EXTRA, fail_on_denied=False)
    assert result["rc"] == 0
    assert result.get("failed") is not True
    assert len(result["denied"]) == 2


def test_check_mode_sends_the_same_reviews_without_dry_run(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    normal = run_module(capsys)
    normal_requests = list(server.fake.requests)
    server.fake.requests.clear()
    checked = run_module(capsys, _ansible_check_mode=True)
    assert checked == normal
    assert server.fake.requests == normal_requests
    assert server.dry_runs == [False, False]


def test_unknown_user_does_not_fail_an_allowed_run(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.fake.identity_status = 404
    result = run_module(capsys)
    assert result["rc"] == 0
    assert (result["user"], result["groups"]) == (None, [])


def test_rejected_credentials_fail_even_without_fail_on_denied(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    server.fake.identity_status = 401
    result = run_module(capsys, fail_on_denied=False)
    assert result["failed"] is True
    assert "rejected the credentials (HTTP 401)" in result["msg"]
    assert result["error"]["type"] == "ApiError"


def test_bad_verbs_fail_before_any_request(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    permissions = PERMISSIONS[:2] + [{"group": "", "resource": "pods", "verbs": []}]
    result = run_module(capsys, permissions=permissions)
    assert result["failed"] is True
    assert result["msg"].startswith("invalid value for option permissions[2].verbs; expected a non-empty list of verbs")
    assert server.fake.requests == []


def test_missing_group_is_refused_by_the_argument_spec(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, permissions=[{"resource": "pods", "verbs": ["get"]}])
    assert result["failed"] is True
    assert "group" in result["msg"]
    assert server.fake.requests == []


def test_bad_namespace_is_refused(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(capsys, namespace="User Service")
    assert result["failed"] is True
    assert "option namespace" in result["msg"]
    assert server.fake.requests == []
