"""Blue/green releases of the real User Service under a steady load, against the local platform.

Every test keeps a bounded stream of requests on the active Service's ClusterIP (from this machine) while the
release runs, and checks what the clients saw: which version answered, and whether any request failed.
"""

from __future__ import annotations

import json
import time

from conftest import kubectl_json, release_state, slot_pods
from loadgen import LoadGenerator

FIGURES: dict = {}


def record(name: str, **values) -> None:
    """Figures for docs/benchmarks.md, printed in the test log (pytest -s shows them)."""
    FIGURES[name] = values
    print("E2E-FIGURE %s %s" % (name, json.dumps(values, sort_keys=True)))


def settle(load: LoadGenerator, seconds: float = 2.0) -> None:
    time.sleep(seconds)


def assert_only(load: LoadGenerator, version: str) -> None:
    versions = load.by_version()
    assert set(versions) == {version}, versions


def test_good_release_under_load_moves_traffic_with_zero_failed_requests(release, load, namespace):
    first = release(version="1.0.0")
    assert first.rc == 0, first.output[-3000:]
    assert first.result["target_slot"] == "blue"

    with load(rate=20, max_seconds=300) as stream:
        settle(stream)
        second = release(version="2.0.0", scale_down_delay=8)
        settle(stream)
    assert second.rc == 0, second.output[-3000:]
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert set(summary["by_version"]) == {"1.0.0", "2.0.0"}, summary
    # After the switch every answer comes from 2.0.0.
    outcomes = stream.snapshot()
    assert outcomes[-1].version == "2.0.0"
    switched = second.result["switched_at"]
    all_new = stream.first_time_all("2.0.0")
    assert all_new is not None

    # The old slot stayed warm for the delay after the switch, then went to 0.
    scaled = second.result["scaled_down"]
    assert scaled["slot"] == "blue"
    warm_for = _seconds_between(switched, scaled["at"])
    assert warm_for >= 8, (switched, scaled)
    blue = kubectl_json("-n", namespace, "get", "deployment", "user-service-blue")
    assert blue["spec"]["replicas"] == 0
    state = release_state(namespace)
    assert state["active_slot"] == "green" and state["phase"] == "done"
    assert state["slots"]["green"]["version"] == "2.0.0"
    record(
        "bluegreen_good_release",
        requests=summary["requests"],
        failed=summary["failed"],
        release_seconds=round(second.seconds, 1),
        old_slot_warm_seconds=round(warm_for, 1),
    )

    # Releasing what already serves traffic changes nothing.
    again = release(version="2.0.0")
    assert again.rc == 0 and again.result["changed"] is False, again.result


def test_rollback_after_good_release_is_instant_and_keeps_pods(release, load, namespace):
    assert release(version="1.0.0").rc == 0
    assert release(version="2.0.0", scale_down_delay=-1).rc == 0
    blue_before = slot_pods(namespace, "blue")
    assert len(blue_before) == 2
    with load(rate=20, max_seconds=120) as stream:
        settle(stream)
        back = release(state="rolled_back", scale_down_delay=-1)
        settle(stream)
    assert back.rc == 0, back.output[-3000:]
    assert back.result["instant"] is True
    assert slot_pods(namespace, "blue") == blue_before  # same pods, same UIDs: nothing was started
    summary = stream.summary()
    assert summary["failed"] == 0, summary
    assert stream.snapshot()[-1].version == "1.0.0"
    assert release_state(namespace)["active_slot"] == "blue"
    record(
        "bluegreen_rollback",
        rollback_seconds=round(back.seconds, 1),
        failed=summary["failed"],
        requests=summary["requests"],
    )


def _seconds_between(start: str, end: str) -> float:
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()
