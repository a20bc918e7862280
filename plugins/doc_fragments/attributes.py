# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes shared by the collection's modules."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
"""

    # Every module of the collection is in the action group meta/runtime.yml defines.
    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/userservice.deploy.userservice) in C(module_defaults) to set the Kubernetes connection
      options once for this module and the collection's other modules.
    support: full
    membership:
      - userservice.deploy.userservice
"""
