# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    InvalidArgumentError,
    LockHeldError,
    ReleaseError,
    error_result,
)


def test_message_names_object_expected_seen_and_fix() -> None:
    error = ReleaseError(
        "health gate failed",
        kind="Deployment",
        namespace="ns",
        name="app-green",
        expected="3 answers in a row",
        seen="HTTP 500",
        hint="Check the pod logs",
    )
    assert str(error) == (
        "Deployment ns/app-green: health gate failed; expected 3 answers in a row; saw HTTP 500. Check the pod logs."
    )


def test_invalid_argument_names_option() -> None:
    error = InvalidArgumentError("health.port", "a port number 1-65535", 0)
    assert str(error) == "invalid value for option health.port; expected a port number 1-65535; saw 0."
    assert error.data == {"option": "health.port"}


def test_lock_held_names_holder_and_expiry() -> None:
    error = LockHeldError("ns", "app-release", "awx job 12 on ee", "2026-01-01T00:01:00Z", "2026-01-01T00:00:00Z")
    text = str(error)
    assert text.startswith("Lease ns/app-release: release lock is held by awx job 12 on ee")
    assert "expires 2026-01-01T00:01:00Z" in text and "steal" in text


def test_error_result_is_fail_json_kwargs_with_data() -> None:
    result = error_result(ReleaseError("boom", kind="Service", name="s", data={"verdict": "fail"}))
    assert result["msg"] == "Service s: boom."
    assert result["error"]["type"] == "ReleaseError"
    assert result["error"]["data"] == {"verdict": "fail"}
