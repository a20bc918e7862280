# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notification options; the argspec is NOTIFY_ARG_SPEC in plugins/module_utils/notify.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  notify:
    description:
      - Send release events as JSON to a webhook. Not set, nothing is sent.
      - Each event is one C(POST) with a JSON content type (C(application/json)) and a body with the keys C(event), C(app),
        C(namespace), C(time) (UTC, ISO 8601), C(run_id) (the release run) and the event's own data (step, weights, verdict, failure).
      - The release never waits long for a webhook and never fails because of one. An event that gets no answer,
        HTTP 408, 425, 429 or a 5xx is tried again up to O(notify.retries) times, after 0.5, 1, 2 seconds (at most
        4). One event takes at most O(notify.timeout) times the number of attempts plus those pauses. An event not
        delivered becomes a warning of the module. After one, the next events are tried once only, until an event
        is delivered again.
      - Other answers (a 3xx or a 4xx) are not retried; redirects are not followed.
    type: dict
    suboptions:
      url:
        description:
          - The webhook, an V(http) or V(https) URL. C(user:password@) in it is sent as basic authentication.
          - Treated as a secret because many webhook URLs carry a token in their path. It is never logged, and
            warnings name only its scheme and host.
        type: str
        required: true
      timeout:
        description:
          - Seconds to wait for one attempt (connecting and each read), at most V(60).
        type: float
        default: 5.0
      retries:
        description:
          - Attempts after the first for an event that may pass on another try, at most V(10).
        type: int
        default: 2
      headers:
        description:
          - Extra request headers, for example C(Authorization). Their values are never logged.
        type: dict
        default: {}
      events:
        description:
          - Events to send. V(step) is a canary step done, V(paused) a run waiting for approval or in a timed pause,
            V(aborted) a canary aborted (traffic back to stable), V(promoted) a release serving all traffic,
            V(frozen) weights held after a failure, V(failed) a run that ended in an error.
          - V(released) is a release serving all traffic without steps (blue/green's switch to the new slot, a first
            canary release), V(rolled_back) blue/green's switch back.
        type: list
        elements: str
        choices: [step, paused, aborted, promoted, frozen, failed, rolled_back, released]
        default: [step, paused, aborted, promoted, frozen, failed, rolled_back, released]
      validate_certs:
        description:
          - Whether to verify the TLS certificate of an V(https) URL.
        type: bool
        default: true
"""
