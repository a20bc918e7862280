# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every release strategy is built from, assembled once.

A strategy (blue/green, canary) gets: one :class:`run.ReleaseRun` (lease,
record, plan, failure data), the serving guard over every Deployment write
(:class:`capacity.Capacity`), the autoscaler that follows traffic, the
selector router on the app's Service, the health gate's settings, Prometheus
for analysis, and notifications that never fail a release. Each strategy adds
only its own steps.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.autoscaler import Autoscaler
from ansible_collections.userservice.deploy.plugins.module_utils.capacity import Capacity
from ansible_collections.userservice.deploy.plugins.module_utils.deployments import deployment_name
from ansible_collections.userservice.deploy.plugins.module_utils.health import HealthSpec
from ansible_collections.userservice.deploy.plugins.module_utils.run import ReleaseRun
from ansible_collections.userservice.deploy.plugins.module_utils.traffic import SelectorRouter


class Strategy:
    def __init__(
        self,
        client: Any,
        params: Dict[str, Any],
        *,
        check_mode: bool,
        holder: str,
        clock: Optional[Any] = None,
        prometheus: Optional[Any] = None,
        notifier: Optional[Any] = None,
        log: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.client = client
        self.params = params
        self.check_mode = check_mode
        self.app = params["app"]
        self.ns = params["namespace"]
        self.service_name = params.get("service") or self.app
        self.container = params.get("container_name") or self.app
        self.log = log or (lambda message: None)
        self.job = ReleaseRun(
            client,
            self.ns,
            self.app,
            check_mode=check_mode,
            identity=holder,
            lock_ttl=params.get("lock_ttl") or 60,
            lock_steal=bool(params.get("lock_steal")),
            history_limit=params["history_limit"],
            clock=clock,
            log=self.log,
        )
        self.clock = self.job.clock
        self.health = HealthSpec(params.get("health"))
        self.capacity = Capacity(client, self.ns, self.service_name, before_write=self.job.confirm_lock, log=self.log)
        # The app's Service: blue/green switches its selector; canary pins it once to what its router serves.
        self.selector_router = SelectorRouter(
            client,
            self.ns,
            self.app,
            self.service_name,
            before_write=self.job.confirm_lock,
            heartbeat=self.job.beat,
            clock=self.clock,
            log=self.log,
        )
        self.autoscaler = Autoscaler(
            client,
            self.ns,
            self.app,
            params.get("autoscaler"),
            manage=params.get("manage_autoscaler", True),
            before_write=self.job.confirm_lock,
            log=self.log,
        )
        self.prometheus = prometheus
        self.notifier = notifier

    # The module reads these.
    @property
    def result(self) -> Dict[str, Any]:
        return self.job.result

    @property
    def warnings(self) -> List[str]:
        return self.job.warnings

    @property
    def state(self) -> Dict[str, Any]:
        return self.job.state

    def name(self, slot: str) -> str:
        return deployment_name(self.app, slot)

    def now(self) -> str:
        return self.job.now()

    def notify(self, event: str, **data: Any) -> None:
        """A release event to the webhook (``notify``); a webhook that fails is a warning, never a failure."""
        if self.notifier is None or self.check_mode:
            return
        warning = self.notifier.send(event, dict(data, run_id=self.job.id))
        if warning:
            self.job.warnings.append(warning)

    def lost_lease_hint(self) -> str:
        """Who holds the lease now and where traffic is, for a run that lost it (and stopped writing)."""
        holder = (self.job.lock.read() or {}).get("spec", {}).get("holderIdentity") or "nobody"
        return (
            "This run lost the release lease to %s and stopped writing; traffic is on %s (Service selector). "
            "The new holder decides what happens next"
            % (holder, json.dumps(self.selector_router.observe(), sort_keys=True))
        )

    def no_verdict_hint(self, where: str) -> str:
        """For a monitor that reached no verdict (a lost lease, a bad configuration, Prometheus down)."""
        return self.lost_lease_hint() if self.job.lock_lost else "The monitor could not judge the release; " + where
