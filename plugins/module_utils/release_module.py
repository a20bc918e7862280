# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the two release modules (bluegreen, canary) do around their strategy, written once.

Called after the module's own argument checks: it masks a Prometheus URL's password, builds the notifier
(refusing a bad ``notify`` before the cluster is contacted), the client and the Prometheus client, and
after the run hands the result on with the diff only in diff mode.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Tuple

from ansible_collections.userservice.deploy.plugins.module_utils.analysis import AnalysisContext
from ansible_collections.userservice.deploy.plugins.module_utils.client import KubeClient
from ansible_collections.userservice.deploy.plugins.module_utils.http_check import url_passwords
from ansible_collections.userservice.deploy.plugins.module_utils.lock import holder_identity
from ansible_collections.userservice.deploy.plugins.module_utils.module_shell import Run
from ansible_collections.userservice.deploy.plugins.module_utils.notify import Notifier


def strategy_inputs(run: Run) -> Tuple[KubeClient, Dict[str, Any]]:
    """The client and the keyword arguments every strategy takes, from the module's parameters."""
    module, params = run.module, run.module.params
    prometheus_params = (params.get("analysis") or {}).get("prometheus") or {}
    # A password in the Prometheus URL's userinfo is masked in everything the module returns.
    module.no_log_values.update(url_passwords([prometheus_params.get("url") or ""]))
    notifier = Notifier.from_params(params.get("notify"), app=params["app"], namespace=params["namespace"])
    return KubeClient.from_params(params, dry_run=module.check_mode), {
        "check_mode": module.check_mode,
        "holder": params.get("lock_holder") or holder_identity(os.environ),
        "prometheus": AnalysisContext.prometheus_from_params(prometheus_params),
        "notifier": notifier,
        "log": module.log,
    }


def run_strategy(run: Run, engine: Any) -> Dict[str, Any]:
    """Run the strategy; its live result and warnings reach the shell also when it fails half way."""
    run.partial, run.warnings = engine.result, engine.warnings
    result = engine.run()
    diff = result.pop("diff")
    if run.module._diff:
        result["diff"] = diff
    return result
