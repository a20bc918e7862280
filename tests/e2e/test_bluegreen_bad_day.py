"""The engine review's bad days, on the real platform under load: the serving slot keeps its pods.

Each scenario is named after the review's finding (../shared/reviews/bluegreen-engine-review.md) and runs
with a bounded stream of requests on the active Service; every test ends with zero failed requests.
"""

from __future__ import annotations

import time

import pytest
from conftest import kubectl_json, release_state
from test_bluegreen_release import record, settle
from test_bluegreen_resilience import kill_group, wait_for_state

PROMETHEUS = {"url": "http://127.0.0.1:9090", "timeout": 5}
# A check that always fails (vector(1) > 0.5) and one that passes slowly (for a monitor to be killed in).
BOOM = {"name": "boom", "type": "prometheus", "query": "vector(1)", "max": 0.5, "samples": 1, "interval": 1}
SLOW_PASS = {"name": "slow", "type": "prometheus", "query": "vector(0)", "max": 0.5, "samples": 60, "interval": 2}
ANALYSIS = {"prometheus": PROMETHEUS, "checks": [BOOM, SLOW_PASS]}
TTL = 10


def replicas(namespace: str, slot: str) -> tuple:
    live = kubectl_json("-n", namespace, "get", "deployment", "user-service-" + slot)
    return live["spec"]["replicas"], live["status"].get("availableReplicas", 0)


def selected_slot(namespace: str) -> str:
    return kubectl_json("-n", namespace, "get", "service", "user-service")["spec"]["selector"].get(
        "deploy.userservice.io/slot"
    )


def test_c1_a_dead_monitor_then_the_same_release_keeps_the_serving_slot(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    assert release(version="2.0.0", scale_down_delay=0).rc == 0
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        proc = release.start(state="monitored", analysis=ANALYSIS, post=["slow"], lock_ttl=TTL)[0]
        wait_for_state(namespace, lambda s: (s.get("run") or {}).get("action") == "monitor")
        kill_group(proc)
        time.sleep(TTL + 1)
        again = release(version="2.0.0", analysis=ANALYSIS)
        settle(stream)
    assert again.rc == 0 and again.result["changed"] is False, again.output[-2000:]
    assert selected_slot(namespace) == "green" and replicas(namespace, "green") == (2, 2)
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record("bad_day_c1", requests=summary["requests"], failed=summary["failed"])


def test_c2_a_release_killed_twice_after_its_switch_completes_on_the_third_run(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    killed = []
    with load(rate=10, max_seconds=400) as stream:
        settle(stream)
        for _attempt in range(2):
            proc = release.start(version="2.0.0", lock_ttl=TTL, watch=30, scale_down_delay=3)[0]
            wait_for_state(
                namespace,
                lambda s: s.get("active_slot") == "green"
                and s.get("phase") == "verifying"
                and (s.get("run") or {}).get("id") not in killed,
            )
            killed.append(release_state(namespace)["run"]["id"])
            kill_group(proc)
            time.sleep(TTL + 1)
        assert release_state(namespace)["run"]["previous_slot"] == "blue"
        final = release(version="2.0.0", scale_down_delay=3)
        settle(stream)
    assert final.rc == 0, final.output[-3000:]
    assert final.result["scaled_down"]["slot"] == "blue"
    assert selected_slot(namespace) == "green" and replicas(namespace, "green") == (2, 2)
    assert replicas(namespace, "blue")[0] == 0
    state = release_state(namespace)
    assert state["run"] is None and state["slots"]["green"]["status"] == "served"
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record("bad_day_c2", requests=summary["requests"], failed=summary["failed"], kills=len(killed))


def test_m1_after_a_flip_back_rollback_refuses_the_failed_release(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        failed = release(version="2.0.0", analysis=ANALYSIS, post=["boom"], scale_down_delay=-1)
        back = release(state="rolled_back")
        settle(stream)
    assert failed.rc != 0 and "switched back to slot blue and verified" in failed.result["msg"], failed.result
    assert back.rc != 0 and "it is failed" in back.result["msg"], back.result.get("msg")
    assert selected_slot(namespace) == "blue" and stream.snapshot()[-1].version == "1.0.0"
    state = release_state(namespace)
    assert state["slots"]["green"]["status"] == "failed" and replicas(namespace, "green")[0] == 0
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record("bad_day_m1", requests=summary["requests"], failed=summary["failed"])


def test_m2_m4_rollback_refuses_a_preview_and_is_never_a_toggle(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    assert release(version="2.0.0", scale_down_delay=-1).rc == 0
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        first = release(state="rolled_back", scale_down_delay=-1)
        second = release(state="rolled_back", scale_down_delay=-1)
        preview = release(state="previewed", version="3.0.0")
        refused = release(state="rolled_back")
        aborted = release(state="aborted")
        settle(stream)
    assert first.rc == 0 and first.result["instant"] is True, first.result
    assert second.rc == 0 and second.result["changed"] is False and "no-op" in second.result["message"]
    assert preview.rc == 0 and preview.result["pending_slot"] == "green", preview.output[-2000:]
    assert refused.rc != 0 and "playbooks/abort.yml" in refused.result["msg"], refused.result.get("msg")
    assert aborted.rc == 0 and aborted.result["aborted_slot"] == "green", aborted.result
    assert selected_slot(namespace) == "blue" and stream.snapshot()[-1].version == "1.0.0"
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert set(summary["by_version"]) <= {"1.0.0", "2.0.0"}, summary  # the preview never got traffic
    record("bad_day_m2_m4", requests=summary["requests"], failed=summary["failed"])


def test_m7_a_rollback_pre_empts_the_warm_window(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        proc, result_file = release.start(version="2.0.0", scale_down_delay=60)
        wait_for_state(namespace, lambda s: (s.get("draining") or {}).get("slot") == "blue")
        started = time.monotonic()
        back = release(state="rolled_back")
        rollback_seconds = time.monotonic() - started
        output = proc.communicate(timeout=300)[0]
        settle(stream)
    assert back.rc == 0 and back.result["instant"] is True, back.output[-2000:]
    assert proc.returncode == 0, output[-2000:]
    assert selected_slot(namespace) == "blue" and replicas(namespace, "blue") == (2, 2)
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert stream.snapshot()[-1].version == "1.0.0"
    record("bad_day_m7_warm_rollback", rollback_seconds=round(rollback_seconds, 1), failed=summary["failed"])


def hpa_replicas(namespace: str, name: str) -> int:
    found = kubectl_json("-n", namespace, "get", "hpa", "--ignore-not-found")
    for hpa in found.get("items", []):
        if hpa["metadata"]["name"] == name:
            return int((hpa.get("status") or {}).get("currentReplicas") or 0)
    return -1


# A low CPU target, so the bounded load from this machine scales the HPA out within a minute or two.
HPA = {
    "minReplicas": 1,
    "maxReplicas": 3,
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}}}
    ],
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
}


def test_m8_the_new_slot_starts_at_the_size_real_load_scaled_the_hpa_to(release, load, namespace):
    first = release(version="1.0.0", replicas=1, autoscaler=HPA)
    assert first.rc == 0, first.output[-2000:]
    with load(rate=40, max_seconds=480) as stream:
        deadline = time.monotonic() + 300
        while hpa_replicas(namespace, "user-service-blue") < 2:
            assert time.monotonic() < deadline, "the HPA never scaled out under load"
            time.sleep(5)
        scaled = hpa_replicas(namespace, "user-service-blue")
        second = release(version="2.0.0", replicas=1, autoscaler=HPA, scale_down_delay=5)
        settle(stream)
    assert second.rc == 0, second.output[-3000:]
    assert second.result["replicas"] >= scaled >= 2, (second.result["replicas"], scaled)
    assert replicas(namespace, "green")[0] >= scaled
    assert hpa_replicas(namespace, "user-service-green") >= 0  # the HPA follows the serving slot...
    assert hpa_replicas(namespace, "user-service-blue") == -1  # ...and the old slot's is gone
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record("bad_day_m8", hpa_replicas_before=scaled, new_slot_replicas=second.result["replicas"], failed=0)


@pytest.mark.serial
def test_m13_the_api_server_lost_for_eight_seconds_after_the_switch_is_ridden_out(release, load, namespace):
    """Every packet to the API server's port is dropped for 6 s while the run watches the new slot: reads and
    lease renewals retry, the release completes, traffic is never touched."""
    import subprocess

    rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", "6443", "-j", "DROP"]
    assert release(version="1.0.0").rc == 0
    with load(rate=10, max_seconds=300) as stream:
        settle(stream)
        proc, result_file = release.start(version="2.0.0", watch=30, scale_down_delay=3)
        wait_for_state(namespace, lambda s: s.get("active_slot") == "green" and s.get("phase") == "verifying")
        subprocess.run(["iptables", "-I", *rule], check=True)
        try:
            time.sleep(6)
        finally:
            subprocess.run(["iptables", "-D", *rule], check=True)
        output = proc.communicate(timeout=300)[0]
        settle(stream)
    assert proc.returncode == 0, output[-3000:]
    assert selected_slot(namespace) == "green" and replicas(namespace, "blue")[0] == 0
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    record("bad_day_m13_api_outage", outage_seconds=6, failed=summary["failed"], requests=summary["requests"])
