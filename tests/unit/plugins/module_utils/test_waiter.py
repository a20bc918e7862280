# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.errors import RolloutFailedError, WaitTimeoutError
from ansible_collections.userservice.deploy.plugins.module_utils.waiter import (
    current_pod_template_hash,
    poll,
    progress_deadline_exceeded,
    rollout_complete,
    stuck_pod_reason,
    wait_for_rollout,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.objects import (
    NS,
    PDE,
    deployment,
    pod,
    replica_set,
)


class TestRolloutComplete:
    def test_complete_when_all_counts_match(self) -> None:
        assert rollout_complete(deployment()) == (True, "3 of 3 replicas updated and available")

    @pytest.mark.parametrize(
        "kwargs, missing",
        [
            (dict(observed=1), "has not observed generation 2"),
            (dict(updated=2), "2 of 3 replicas updated"),
            (dict(total=4), "1 old replicas pending termination"),
            (dict(available=2), "2 of 3 updated replicas available"),
        ],
    )
    def test_incomplete_says_what_is_missing(self, kwargs: Dict[str, int], missing: str) -> None:
        complete, detail = rollout_complete(deployment(**kwargs))
        assert not complete
        assert missing in detail

    def test_replicas_default_to_one_when_unset(self) -> None:
        dep = deployment(updated=1, total=1, available=1)
        del dep["spec"]["replicas"]
        assert rollout_complete(dep)[0]

    def test_scaled_to_zero_is_complete(self) -> None:
        assert rollout_complete(deployment(replicas=0, updated=0, total=0, available=0))[0]


class TestPredicates:
    def test_progress_deadline_returns_condition_message(self) -> None:
        assert progress_deadline_exceeded(deployment(conditions=[PDE])) == PDE["message"]

    def test_progressing_true_is_not_deadline(self) -> None:
        ok = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        assert progress_deadline_exceeded(deployment(conditions=[ok])) is None

    @pytest.mark.parametrize("reason", ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull"])
    def test_stuck_pod_names_pod_container_and_reason(self, reason: str) -> None:
        text = stuck_pod_reason([pod("p1", "h", None), pod("p2", "h", reason, restarts=4)])
        assert text is not None
        assert "pod p2 container app is %s" % reason in text
        assert "back-off 40s" in text

    def test_container_creating_is_not_stuck(self) -> None:
        assert stuck_pod_reason([pod("p1", "h", "ContainerCreating")]) is None

    def test_a_config_cache_still_syncing_is_not_stuck_but_a_missing_configmap_is(self) -> None:
        # Seen on the platform under load: the kubelet retries by itself once its watch has synced.
        syncing = pod("p1", "h", "CreateContainerConfigError")
        syncing["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = (
            "failed to sync configmap cache: timed out waiting for the condition"
        )
        assert stuck_pod_reason([syncing]) is None
        missing = pod("p2", "h", "CreateContainerConfigError")
        missing["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = 'configmap "app-x" not found'
        assert 'is CreateContainerConfigError: configmap "app-x" not found' in (stuck_pod_reason([missing]) or "")

    def test_current_hash_follows_revision_and_owner(self) -> None:
        sets = [replica_set("3", "old"), replica_set("4", "other-owner", owner="x"), replica_set("4", "new")]
        assert current_pod_template_hash(deployment(), sets) == "new"


class TestPoll:
    def test_returns_value_and_sleeps_interval_with_heartbeats(self, clock: Any) -> None:
        answers = iter([(False, "a"), (False, "b"), (True, "done")])
        beats: List[float] = []
        value = poll(
            lambda: next(answers),
            timeout=60,
            interval=4,
            what="x",
            clock=clock,
            heartbeat=lambda: beats.append(clock.monotonic()),
            heartbeat_every=2,
        )
        assert value == "done"
        assert clock.elapsed == 8
        assert clock.sleeps == [2, 2, 2, 2]
        assert beats == [0, 2, 4, 6]

    def test_timeout_carries_last_observation(self, clock: Any) -> None:
        with pytest.raises(WaitTimeoutError) as info:
            poll(lambda: (False, "2 of 3 ready"), timeout=10, interval=3, what="pods", clock=clock)
        assert info.value.data["last"] == "2 of 3 ready"
        assert clock.elapsed == 10  # the last sleep is cut to the deadline
        assert "timed out after 10s waiting for pods" in str(info.value)

    def test_step_exception_fails_fast(self, clock: Any) -> None:
        def boom() -> Any:
            raise RolloutFailedError("nope")

        with pytest.raises(RolloutFailedError):
            poll(boom, timeout=100, interval=1, what="x", clock=clock)
        assert clock.elapsed == 0


class TestWaitForRollout:
    def test_waits_until_complete(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=1), deployment(available=2), deployment()]
        kube.replica_sets = [replica_set("4", "h")]
        kube.pods = [pod("p1", "h")]
        result = wait_for_rollout(kube, NS, "user-service-green", timeout=60, interval=5, clock=clock)
        assert result["status"]["availableReplicas"] == 3
        assert clock.elapsed == 10

    def test_progress_deadline_fails_at_once_with_message(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=1, conditions=[PDE])]
        with pytest.raises(RolloutFailedError) as info:
            wait_for_rollout(kube, NS, "user-service-green", timeout=600, interval=5, clock=clock)
        assert clock.elapsed == 0
        assert "has timed out progressing" in str(info.value)
        assert "Deployment user-service-dev/user-service-green" in str(info.value)

    def test_replica_failure_fails_at_once_naming_the_cause(self, kube: Any, clock: Any) -> None:
        refused = {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'serviceaccount "user-service" not found',
        }
        kube.deployments = [deployment(updated=0, available=0, conditions=[refused])]
        kube.replica_sets = [replica_set("4", "h")]
        with pytest.raises(RolloutFailedError) as info:
            wait_for_rollout(kube, NS, "user-service-green", timeout=600, interval=5, clock=clock)
        assert clock.elapsed == 0
        assert 'serviceaccount "user-service" not found' in str(info.value)
        assert info.value.hint == "Fix what the message names (ServiceAccount, quota, Pod Security admission)"

    def test_the_hint_names_the_fix_then_what_the_caller_says_is_left(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=1, conditions=[PDE])]
        with pytest.raises(RolloutFailedError) as info:
            wait_for_rollout(
                kube, NS, "user-service-green", timeout=600, interval=5, clock=clock, consequence="traffic stayed"
            )
        assert info.value.hint == (
            "Inspect the new pods (kubectl describe) and fix the image or configuration; traffic stayed"
        )

    def test_crash_loop_of_current_pods_fails_fast(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=0)]
        kube.replica_sets = [replica_set("4", "new"), replica_set("3", "old")]
        kube.pods = [pod("old-1", "old", "CrashLoopBackOff"), pod("new-1", "new")]
        kube.deployments = [deployment(available=0), deployment(available=0)]
        calls = {"n": 0}

        def later_crash(namespace: str, selector: Dict[str, str]) -> List[Dict[str, Any]]:
            calls["n"] += 1
            crashing = "CrashLoopBackOff" if calls["n"] > 1 else None
            return [pod("new-1", "new", crashing, restarts=5)] if selector.get("pod-template-hash") == "new" else []

        kube.list_pods = later_crash
        with pytest.raises(RolloutFailedError) as info:
            wait_for_rollout(kube, NS, "user-service-green", timeout=600, interval=5, clock=clock)
        assert clock.elapsed == 5  # one interval, not the 600 s deadline
        assert "new-1" in str(info.value) and "CrashLoopBackOff after 5 restarts" in str(info.value)

    def test_crash_loop_of_old_pods_is_ignored(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=2), deployment()]
        kube.replica_sets = [replica_set("4", "new"), replica_set("3", "old")]
        kube.pods = [pod("old-1", "old", "CrashLoopBackOff"), pod("new-1", "new")]
        assert wait_for_rollout(kube, NS, "user-service-green", timeout=60, interval=5, clock=clock)

    def test_timeout_names_the_deployment(self, kube: Any, clock: Any) -> None:
        kube.deployments = [deployment(available=1)]
        with pytest.raises(WaitTimeoutError) as info:
            wait_for_rollout(kube, NS, "user-service-green", timeout=20, interval=5, clock=clock)
        assert "Deployment user-service-dev/user-service-green" in str(info.value)
        assert "1 of 3 updated replicas available" in str(info.value)
