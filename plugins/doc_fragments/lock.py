# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release lock options; the argspec is LOCK_ARG_SPEC in plugins/module_utils/lock.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  lock_ttl:
    description:
      - Seconds the release lock (Lease C(<app>-release)) stays valid without renewal. The run renews it every third
        of this time while it waits, gates and analyses.
      - A run that died leaves the lock behind; the next run takes it over once this time has passed since the last
        renewal, and records the takeover on the Lease.
      - Keep it well above the clock difference between the machines that run releases.
    type: int
    default: 60
  lock_steal:
    description:
      - Take the release lock even though another run holds it and it has not expired.
      - Only for a run known to be dead; the other run, if alive, fails at its next renewal.
    type: bool
    default: false
  lock_holder:
    description:
      - Identity written to the lock. By default it is derived from the environment, in this order, the AWX job
        (E(AWX_JOB_ID) or E(TOWER_JOB_ID) and the host), the GitHub Actions run URL, E(CI_JOB_URL) (GitLab),
        E(BUILD_URL) (Jenkins), else C(user@host pid N).
      - A run whose identity equals the recorded holder re-enters the lock instead of failing.
    type: str
"""
