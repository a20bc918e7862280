# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every write to a release's Deployments, behind one guard: what serves traffic is never taken away.

The invariant: no action (release, preview, promote, rollback, abort, monitor,
resume) scales down, deletes or replaces the pod template of a Deployment whose
pods the live Service selects. The guard re-reads the Service right before each
such write, so it holds whatever the state record says, whatever the plan saw,
and whichever run (or person) moved traffic in between. Scaling *up* a serving
Deployment (a rollback restoring capacity) is allowed.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

from ansible_collections.userservice.deploy.plugins.module_utils.deployments import (
    pod_labels_of,
    release_hash_of,
    replicas_of,
    selects,
    template_hash_of,
)
from ansible_collections.userservice.deploy.plugins.module_utils.errors import InvalidStateError


class ServingDeploymentError(InvalidStateError):
    """A write would take capacity away from the Deployment that serves traffic: refused."""


class Capacity:
    """Creates, replaces, scales and deletes Deployments, refusing any write that would hurt the serving one."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        service: str,
        *,
        before_write: Callable[[], None],
        log: Callable[[str], None],
    ) -> None:
        self.client = client
        self.ns = namespace
        self.service = service
        # Renews the lease (and stops a run that lost it) right before each write.
        self.before_write = before_write
        self.log = log

    def live_selector(self) -> Dict[str, str]:
        service = self.client.read_optional("Service", self.ns, self.service)
        return dict(((service or {}).get("spec") or {}).get("selector") or {})

    def refuse_if_serving(self, name: str, deployment: Optional[Dict[str, Any]], what: str) -> None:
        """Raise if the live Service selects this Deployment's pods; called right before the write."""
        selector = self.live_selector()
        if deployment is not None and selects(selector, pod_labels_of(deployment)):
            raise ServingDeploymentError(
                "refused to %s the Deployment that serves traffic" % what,
                kind="Deployment",
                namespace=self.ns,
                name=name,
                expected="a Deployment the Service %s does not select" % self.service,
                seen="Service selector %s selects its pods" % json.dumps(selector, sort_keys=True),
                hint="Nothing was changed. The release state disagrees with the cluster: read it with "
                "playbooks/status.yml before running again",
            )

    def read(self, name: str) -> Optional[Dict[str, Any]]:
        return self.client.read_optional("Deployment", self.ns, name)

    def ensure(self, desired: Dict[str, Any]) -> Dict[str, Any]:
        """Create the Deployment or bring its template and size to ``desired`` (never the serving one's)."""
        name = desired["metadata"]["name"]
        current = self.read(name)
        self.before_write()
        if current is None:
            self.log("create Deployment %s" % name)
            return self.client.create("Deployment", self.ns, desired)
        same_template = template_hash_of(current) == template_hash_of(desired)
        if same_template and replicas_of(current) == desired["spec"]["replicas"]:
            return current
        if not same_template or (replicas_of(current) or 0) > desired["spec"]["replicas"]:
            self.refuse_if_serving(name, current, "replace the pod template of" if not same_template else "scale down")
        body = json.loads(json.dumps(desired))
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.log("update Deployment %s" % name)
        return self.client.replace("Deployment", self.ns, body)

    def promote(self, desired: Dict[str, Any], proof: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """The one write that may replace a serving template: a canary's promotion to stable.

        Allowed only when ``proof`` (the live canary Deployment) runs the very release ``desired`` carries,
        and at the serving Deployment's live size (an autoscaler owns it); the rolling update keeps
        every old pod until a new one is Ready.
        """
        name = desired["metadata"]["name"]
        current = self.read(name)
        if current is None or release_hash_of(proof) is None or release_hash_of(proof) != release_hash_of(desired):
            raise ServingDeploymentError(
                "refused to promote a release that has not run as the canary",
                kind="Deployment",
                namespace=self.ns,
                name=name,
                expected="the canary Deployment running release %s" % release_hash_of(desired),
                seen="canary release %s" % release_hash_of(proof),
                hint="Nothing was changed; release the version again to run its canary steps",
            )
        if template_hash_of(current) == template_hash_of(desired):
            return current
        self.before_write()
        body = json.loads(json.dumps(desired))
        body["spec"]["replicas"] = max(replicas_of(current) or 0, body["spec"]["replicas"])
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.log("promote Deployment %s to release %s" % (name, release_hash_of(desired)))
        return self.client.replace("Deployment", self.ns, body)

    def scale(self, name: str, replicas: int) -> bool:
        """Set the replica count; returns whether it wrote. Scaling down what serves is refused."""
        current = self.read(name)
        if current is None or replicas_of(current) == replicas:
            return False
        self.before_write()
        if replicas < (replicas_of(current) or 0):
            self.refuse_if_serving(name, current, "scale down")
        self.log("scale Deployment %s to %d" % (name, replicas))
        # No resourceVersion precondition: the controller's status writes bump it all the time, and the
        # guard above (not a version match) is what makes this write safe.
        self.client.patch("Deployment", self.ns, name, {"spec": {"replicas": replicas}})
        return True

    def delete(self, name: str) -> bool:
        current = self.read(name)
        if current is None:
            return False
        self.before_write()
        self.refuse_if_serving(name, current, "delete")
        self.log("delete Deployment %s" % name)
        self.client.delete("Deployment", self.ns, name)
        return True
