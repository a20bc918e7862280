# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
from typing import Any, Dict

import pytest

from ansible_collections.userservice.deploy.plugins.module_utils.errors import (
    ApiError,
    ApiUnreachableError,
    ConflictError,
    InvalidArgumentError,
    LockHeldError,
    LockLostError,
)
from ansible_collections.userservice.deploy.plugins.module_utils.lock import (
    TAKEOVER_ANNOTATION,
    LeaseHeartbeat,
    LeaseLock,
    holder_identity,
)
from ansible_collections.userservice.deploy.tests.unit.plugins.module_utils.fakes import FakeClock, FakeKube

NS = "user-service-prod"
KEY = ("Lease", NS, "user-service-release")


def lock(kube: FakeKube, clock: FakeClock, holder: str = "me", ttl: int = 60) -> LeaseLock:
    return LeaseLock(kube, NS, "user-service", holder, ttl=ttl, clock=clock)


def spec(kube: FakeKube) -> Dict[str, Any]:
    return kube.objects[KEY]["spec"]


class TestIdentity:
    def test_awx(self) -> None:
        assert holder_identity({"AWX_JOB_ID": "42"}, host="awx-ee") == "awx job 42 on awx-ee"
        assert holder_identity({"TOWER_JOB_ID": "7"}, host="h") == "awx job 7 on h"
        # What AWX's job runner exports; JOB_ID alone (another tool's) is not taken for AWX.
        assert holder_identity({"JOB_ID": "31", "INVENTORY_ID": "4"}, host="ee") == "awx job 31 on ee"
        assert not holder_identity({"JOB_ID": "31"}, host="ee", user="ci", pid=9).startswith("awx job")

    def test_github(self) -> None:
        env = {
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "org/user-service",
            "GITHUB_RUN_ID": "123",
            "GITHUB_RUN_ATTEMPT": "2",
        }
        assert holder_identity(env) == "https://github.com/org/user-service/actions/runs/123/attempts/2"

    def test_gitlab_and_jenkins(self) -> None:
        assert (
            holder_identity({"CI_JOB_URL": "https://gitlab.example/g/p/-/jobs/9"})
            == "https://gitlab.example/g/p/-/jobs/9"
        )
        assert holder_identity({"BUILD_URL": "https://jenkins/job/us/5/"}) == "https://jenkins/job/us/5/"

    def test_operator_fallback(self) -> None:
        assert holder_identity({}, host="laptop", user="ana", pid=99) == "ana@laptop pid 99"


class TestAcquire:
    def test_creates_lease_when_absent(self, kube: FakeKube, clock: FakeClock) -> None:
        info = lock(kube, clock).acquire()
        assert info.created and info.holder == "me"
        assert spec(kube)["holderIdentity"] == "me" and spec(kube)["leaseDurationSeconds"] == 60
        assert spec(kube)["acquireTime"] == spec(kube)["renewTime"] == "2026-01-02T03:04:05.000000Z"
        assert info.expires_at == "2026-01-02T03:05:05.000000Z"

    def test_held_by_other_fails_fast_naming_holder_and_expiry(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="https://ci/runs/1").acquire()
        clock.advance(10)
        writes_before = len(kube.writes())
        with pytest.raises(LockHeldError) as info:
            lock(kube, clock).acquire()
        assert info.value.holder == "https://ci/runs/1"
        assert info.value.expires_at == "2026-01-02T03:05:05.000000Z"
        assert "https://ci/runs/1" in str(info.value) and "steal" in str(info.value)
        assert len(kube.writes()) == writes_before

    def test_expired_lease_is_taken_over_and_recorded(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="dead run").acquire()
        clock.advance(61)
        info = lock(kube, clock).acquire()
        assert info.takeover == "expired" and info.taken_from == "dead run"
        assert spec(kube)["holderIdentity"] == "me"
        assert spec(kube)["leaseTransitions"] == 1
        assert "expired from dead run" in kube.objects[KEY]["metadata"]["annotations"][TAKEOVER_ANNOTATION]

    def test_steal_takes_a_live_lease(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="stuck run").acquire()
        info = lock(kube, clock).acquire(steal=True)
        assert info.takeover == "stolen" and info.taken_from == "stuck run"
        assert spec(kube)["holderIdentity"] == "me"

    def test_reacquire_by_same_holder_keeps_acquire_time(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock).acquire()
        clock.advance(20)
        info = lock(kube, clock).acquire()
        assert info.reentered
        assert spec(kube)["acquireTime"] == "2026-01-02T03:04:05.000000Z"
        assert spec(kube)["renewTime"] == "2026-01-02T03:04:25.000000Z"

    def test_released_lease_is_free(self, kube: FakeKube, clock: FakeClock) -> None:
        first = lock(kube, clock, holder="a")
        first.acquire()
        assert first.release()
        assert "holderIdentity" not in spec(kube)
        assert lock(kube, clock, holder="b").acquire().takeover is None

    def test_create_race_rereads_and_reports_winner(self, kube: FakeKube, clock: FakeClock) -> None:
        def other_creates_first(verb: str, kind: str, name: str) -> None:
            kube.before_write = None
            lock(kube, clock, holder="racer").acquire()

        kube.before_write = other_creates_first
        with pytest.raises(LockHeldError) as info:
            lock(kube, clock).acquire()
        assert info.value.holder == "racer"

    def test_patch_race_rereads(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="dead").acquire()
        clock.advance(120)

        def racer_takes_it(verb: str, kind: str, name: str) -> None:
            kube.before_write = None
            lock(kube, clock, holder="racer").acquire()

        kube.before_write = racer_takes_it
        with pytest.raises(LockHeldError) as info:
            lock(kube, clock).acquire()
        assert info.value.holder == "racer"

    def test_endless_conflicts_give_up(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="me").acquire()
        kube.before_write = lambda *a: kube.put("Lease", NS, kube.objects[KEY])
        with pytest.raises(ConflictError):
            lock(kube, clock).acquire()

    def test_check_is_read_only(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="other").acquire()
        n = len(kube.writes())
        with pytest.raises(LockHeldError):
            lock(kube, clock).check()
        assert lock(kube, clock).check(steal=True) == "other"
        clock.advance(100)
        assert lock(kube, clock).check() is None
        assert len(kube.writes()) == n

    def test_ttl_validated(self, kube: FakeKube, clock: FakeClock) -> None:
        with pytest.raises(InvalidArgumentError) as info:
            lock(kube, clock, ttl=1)
        assert info.value.option == "lock_ttl"


class TestRenewRelease:
    def test_renew_moves_renew_time(self, kube: FakeKube, clock: FakeClock) -> None:
        mine = lock(kube, clock)
        mine.acquire()
        clock.advance(30)
        assert mine.renew() == "2026-01-02T03:04:35.000000Z"
        assert spec(kube)["renewTime"] == "2026-01-02T03:04:35.000000Z"

    def test_renew_after_unrelated_write_retries(self, kube: FakeKube, clock: FakeClock) -> None:
        mine = lock(kube, clock)
        mine.acquire()
        kube.put("Lease", NS, kube.objects[KEY])  # e.g. someone labels it: version moves, holder stays
        mine.renew()
        assert spec(kube)["holderIdentity"] == "me"

    def test_renew_after_steal_is_lock_lost(self, kube: FakeKube, clock: FakeClock) -> None:
        mine = lock(kube, clock)
        mine.acquire()
        lock(kube, clock, holder="thief").acquire(steal=True)
        with pytest.raises(LockLostError) as info:
            mine.renew()
        assert info.value.holder == "thief"

    def test_release_only_when_held(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="other").acquire()
        assert lock(kube, clock).release() is False
        assert spec(kube)["holderIdentity"] == "other"

    def test_heartbeat_renews_every_third_of_ttl(self, kube: FakeKube, clock: FakeClock) -> None:
        mine = lock(kube, clock, ttl=30)
        mine.acquire()
        beat = LeaseHeartbeat(mine)
        for _tick in range(7):
            beat()
            clock.advance(5)
        assert beat.renewals == 3  # at 10, 20, 30 s


class TestOneClock:
    """Expiry is judged on the API server's clock, whatever the runner's clock says (client-go's rule)."""

    def test_a_runner_clock_far_ahead_does_not_take_a_live_lease(self, kube: FakeKube, clock: FakeClock) -> None:
        lock(kube, clock, holder="other").acquire()
        written = datetime.datetime(2026, 12, 2, 0, 0, 0, tzinfo=datetime.timezone.utc)
        kube.objects[KEY]["metadata"]["managedFields"] = [
            {"manager": "userservice.deploy", "time": written.strftime("%Y-%m-%dT%H:%M:%SZ")}
        ]
        kube.server_now = lambda: written + datetime.timedelta(seconds=20)  # type: ignore[attr-defined]
        clock.advance(3600)  # this runner's clock is an hour ahead
        with pytest.raises(LockHeldError):
            lock(kube, clock).acquire()
        kube.server_now = lambda: written + datetime.timedelta(seconds=61)  # type: ignore[attr-defined]
        assert lock(kube, clock).acquire().takeover == "expired"


class TestRenewRetries:
    def test_a_renewal_that_gets_no_answer_is_retried(self, kube: FakeKube, clock: FakeClock) -> None:
        held = lock(kube, clock)
        held.acquire()
        failures = [ApiUnreachableError("no answer", seen="timeout"), ApiError("busy", status=503)]
        real = kube.patch

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop(0)
            return real(*args, **kwargs)

        kube.patch = flaky  # type: ignore[method-assign]
        held.renew()
        assert failures == [] and clock.sleeps[-2:] == [0.5, 1.0]
