# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils import state as st
from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ConflictError,
    InvalidArgumentError,
    InvalidStateError,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeKube

NS = "user-service-staging"
IMG1 = "127.0.0.1:5000/user-service@sha256:" + "1" * 64
IMG2 = "127.0.0.1:5000/user-service@sha256:" + "2" * 64
T = "2026-01-02T03:04:05.000000Z"


def released(image: str = IMG1, slot: str = "blue") -> Dict[str, Any]:
    state = st.new_state("user-service")
    state = st.begin_run(state, run_id="r1", action="release", holder="me", now=T, target_slot=slot)
    state = st.set_slot(state, slot, image=image, version="1.0.0", config_refs=["user-service-config-aaa"], now=T)
    state = st.set_phase(state, "gating", now=T)
    state = st.record_switch(state, slot, now=T)
    return st.finish_run(state, "done", now=T)


class TestTransitions:
    def test_full_release_records_slot_digest_and_history(self) -> None:
        state = released()
        assert state["phase"] == "done" and state["run"] is None
        assert state["active_slot"] == "blue"
        assert state["slots"]["blue"]["digest"] == "sha256:" + "1" * 64
        assert state["slots"]["blue"]["config_refs"] == ["user-service-config-aaa"]
        assert state["revision"] == 1
        assert state["history"][-1]["outcome"] == "done"
        assert state["history"][-1]["image"] == IMG1

    def test_pure_functions_do_not_mutate_input(self) -> None:
        before = st.new_state("user-service")
        snapshot = json.dumps(before, sort_keys=True)
        st.begin_run(before, run_id="r", action="release", holder="me", now=T)
        assert json.dumps(before, sort_keys=True) == snapshot

    def test_same_image_does_not_bump_revision(self) -> None:
        state = released()
        again = st.set_slot(state, "blue", image=IMG1, config_refs=["user-service-config-aaa"], now=T)
        assert again["revision"] == 1
        newer = st.set_slot(state, "green", image=IMG2, now=T)
        assert newer["revision"] == 2 and newer["slots"]["green"]["revision"] == 2

    def test_image_must_be_pinned_by_digest(self) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            st.set_slot(st.new_state("a"), "blue", image="user-service:1.0", now=T)
        assert info.value.option == "image"

    @pytest.mark.parametrize(
        "start, target",
        [("deploying", "verifying"), ("gating", "deploying"), ("verifying", "switched"), ("switched", "gating")],
    )
    def test_illegal_moves_are_refused(self, start: str, target: str) -> None:
        state = st.begin_run(st.new_state("a"), run_id="r", action="release", holder="me", now=T, phase=start)
        with pytest.raises(InvalidStateError) as info:
            st.set_phase(state, target, now=T)
        assert "cannot move from %s to %s" % (start, target) in str(info.value)

    def test_any_active_phase_may_fail_abort_or_roll_back(self) -> None:
        for phase in st.ACTIVE_PHASES:
            state = st.begin_run(st.new_state("a"), run_id="r", action="release", holder="me", now=T, phase=phase)
            for outcome in ("failed", "aborted", "rolled_back"):
                assert st.finish_run(state, outcome, now=T)["phase"] == outcome

    def test_rest_phase_needs_a_new_run(self) -> None:
        with pytest.raises(InvalidStateError):
            st.set_phase(released(), "gating", now=T)

    def test_in_flight_run_blocks_a_new_one_unless_resumed(self) -> None:
        state = st.begin_run(st.new_state("a"), run_id="r1", action="release", holder="awx job 7", now=T)
        state = st.set_phase(state, "gating", now=T)
        with pytest.raises(InvalidStateError) as info:
            st.begin_run(state, run_id="r2", action="release", holder="me", now=T)
        assert "run r1" in str(info.value) and "awx job 7" in str(info.value)
        resumed = st.begin_run(state, run_id="r2", action="release", holder="me", now=T, phase="gating", resume=True)
        assert resumed["run"]["resumed_from"] == "r1" and resumed["phase"] == "gating"

    def test_failure_kept_as_data(self) -> None:
        state = st.begin_run(released(), run_id="r2", action="release", holder="me", now=T, target_slot="green")
        state = st.set_phase(state, "gating", now=T, step="health gate")
        failure = {"check": "errors", "value": 0.2, "bound": {"max": 0.05}, "samples": [{"value": 0.2}]}
        state = st.finish_run(state, "failed", now=T, failure=failure)
        assert state["last_failure"]["check"] == "errors"
        assert state["last_failure"]["run_id"] == "r2"
        assert state["last_failure"]["phase"] == "gating" and state["last_failure"]["step"] == "health gate"
        assert state["history"][-1]["failure"]["value"] == 0.2
        assert state["active_slot"] == "blue"

    def test_history_is_bounded(self) -> None:
        state = st.new_state("a")
        for i in range(15):
            state = st.begin_run(state, run_id="r%d" % i, action="release", holder="me", now=T)
            state = st.finish_run(state, "done", now=T, history_limit=10)
        assert len(state["history"]) == 10
        assert state["history"][0]["run_id"] == "r5" and state["history"][-1]["run_id"] == "r14"

    def test_pending_slot_cleared_by_switch(self) -> None:
        state = st.begin_run(released(), run_id="r2", action="preview", holder="me", now=T, target_slot="green")
        state = st.set_pending(state, "green", now=T)
        state = st.set_phase(state, "gating", now=T)
        state = st.record_switch(state, "green", now=T)
        assert state["active_slot"] == "green" and state["pending_slot"] is None
        assert st.other_slot("green") == "blue"


class TestStore:
    def test_read_missing_then_initialise_then_update(self, kube: FakeKube) -> None:
        store = st.StateStore(kube, NS, "user-service")
        assert store.read() == (None, None)
        state, version = store.read_or_initialise()
        stored = kube.objects[("ConfigMap", NS, "user-service-release")]
        assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "userservice.deploy"
        assert json.loads(stored["data"]["state.json"])["schema"] == st.SCHEMA_VERSION
        new, new_version = store.update(
            lambda s: st.begin_run(s, run_id="r", action="release", holder="me", now=T), version
        )
        assert new_version != version
        assert store.read()[0]["run"]["id"] == "r"

    def test_update_with_stale_version_is_conflict(self, kube: FakeKube) -> None:
        store = st.StateStore(kube, NS, "user-service")
        version = store.read_or_initialise()[1]
        store.write(st.new_state("user-service"), version)  # another writer moves the record on
        with pytest.raises(ConflictError) as info:
            store.update(lambda s: s, version)
        assert "ConfigMap user-service-staging/user-service-release" in str(info.value)

    def test_write_race_is_conflict(self, kube: FakeKube) -> None:
        store = st.StateStore(kube, NS, "user-service")
        store.read_or_initialise()

        def sneak(verb: str, kind: str, name: str) -> None:
            kube.before_write = None
            kube.put("ConfigMap", NS, kube.objects[("ConfigMap", NS, name)])

        kube.before_write = sneak
        with pytest.raises(ConflictError):
            store.update(lambda s: s)

    def test_corrupt_record_is_reported(self, kube: FakeKube) -> None:
        kube.put("ConfigMap", NS, {"metadata": {"name": "user-service-release"}, "data": {"state.json": "{oops"}})
        with pytest.raises(InvalidStateError) as info:
            st.StateStore(kube, NS, "user-service").read()
        assert "not valid JSON" in str(info.value)

    def test_newer_schema_is_refused(self, kube: FakeKube) -> None:
        data = dict(st.new_state("user-service"), schema=st.SCHEMA_VERSION + 1)
        kube.put(
            "ConfigMap", NS, {"metadata": {"name": "user-service-release"}, "data": {"state.json": json.dumps(data)}}
        )
        with pytest.raises(InvalidStateError) as info:
            st.StateStore(kube, NS, "user-service").read()
        assert "upgrade the collection" in str(info.value)
