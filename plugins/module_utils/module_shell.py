# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shell every module of the collection runs in.

A module file is its docs, the option groups it takes and a ``work`` function.
This shell merges the option groups into one argument spec, checks the Python
libraries, runs ``work``, turns a typed :class:`ReleaseError` into ``fail_json``
once (with whatever the run did before it failed, so a failed release still
returns its plan, verdicts and failure record), turns anything unexpected into
a readable failure with its traceback, and hands on the engine's warnings on
both paths.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Dict, Iterable, List

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.userservice.deploy.plugins.module_utils.client import require_libraries
from ansible_collections.userservice.deploy.plugins.module_utils.errors import ReleaseError, error_result


class Run:
    """What ``work`` shares with the shell while it runs."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        # The engine's live result and warnings: reported also when the run fails half way.
        self.partial: Dict[str, Any] = {}
        self.warnings: List[str] = []


def run_module(
    option_groups: Iterable[Dict[str, Dict[str, Any]]],
    work: Callable[[Run], Dict[str, Any]],
    *,
    needs_kubernetes: bool = True,
    **module_kwargs: Any,
) -> None:
    argument_spec: Dict[str, Dict[str, Any]] = {}
    for group in option_groups:
        argument_spec.update(group)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    if needs_kubernetes:
        require_libraries(module)
    run = Run(module)
    try:
        result = work(run)
    except ReleaseError as exc:
        _warn(run)
        partial = {key: value for key, value in run.partial.items() if key != "diff"}
        module.fail_json(**dict(partial, **error_result(exc)))
    except Exception as exc:  # noqa: BLE001 - one place turns the unexpected into a readable failure
        _warn(run)
        module.fail_json(msg="unexpected error: %s" % exc, exception=traceback.format_exc())
    _warn(run)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


def _warn(run: Run) -> None:
    for warning in run.warnings:
        run.module.warn(warning)
    run.warnings[:] = []
