# Copyright: (c) 2026, userservice.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Analysis options; the argspec is ANALYSIS_ARG_SPEC in plugins/module_utils/analysis.py."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  analysis:
    description:
      - Metric (Prometheus), HTTP, Kubernetes Job and comparative (canary against baseline) checks, declared once
        and run by name in the phases the module offers. C(docs/analysis.md) explains how each type decides.
      - Each check takes O(analysis.checks[].samples) samples, one every O(analysis.checks[].interval) seconds,
        and ends with a verdict V(pass), V(fail), V(error) or V(inconclusive). Checks of one phase run side by
        side; the first V(fail) or V(error) stops the others (they end V(inconclusive)). The phase verdict is
        V(fail) if any check failed, else V(error) if any could not measure, else V(inconclusive) if any was
        inconclusive, else V(pass); C(decided_by) in the result names the check that decided it.
      - A sample is ok when its value is within O(analysis.checks[].min) and O(analysis.checks[].max). Both
        bounds are inclusive, so a value equal to O(analysis.checks[].max) is ok.
      - A check fails as soon as its failed samples exceed O(analysis.checks[].failure_limit). With
        O(analysis.checks[].consecutive_success) it passes as soon as that many samples with data in a row are
        ok and is inconclusive if the samples run out first; otherwise it passes after its last sample.
      - A sample that could not be taken is an B(error), not a failed sample. That is, Prometheus did not answer
        or answered an HTTP error, rejected the query, timed out, or returned more than one series; or the API
        server did not relay an O(analysis.checks[].service) or O(analysis.checks[].pod) check; or a check's Job was
        refused, could not start its container or did not finish within its O(analysis.checks[].job.timeout). Errors do not count
        towards O(analysis.checks[].samples) and do not break a run of ok samples; more than
        O(analysis.checks[].error_limit) errors in a row end the check V(error). The message names the check
        and its query.
      - An V(error) verdict says nothing about the release. It is its own outcome, not a V(fail); the module's
        documentation says what a phase does on it.
      - An HTTP check whose O(analysis.checks[].url) does not answer at all (connection refused, timeout) counts a
        failed sample, because the target is what is judged. An answer with an unexpected status counts a failed sample
        too.
      - Every sample (time, value, ok, outcome) and every verdict (check, query, value, bound, reason, counts of
        samples, failures, errors and no-data samples, start and end time) is returned and stored in the release
        state record. Results never contain an HTTP answer's body (only its status, content type and length)
        and show a URL's C(user:password@) as C(***@).
    type: dict
    default: {}
    suboptions:
      prometheus:
        description:
          - Where Prometheus answers instant queries (C(GET /api/v1/query)).
        type: dict
        default: {}
        suboptions:
          url:
            description:
              - Base URL of the Prometheus server.
            type: str
            default: http://127.0.0.1:9090
          timeout:
            description:
              - Seconds to wait for one query.
            type: float
            default: 10.0
          validate_certs:
            description:
              - Whether to verify the TLS certificate of an V(https) URL.
            type: bool
            default: true
          bearer_token:
            description:
              - Token sent to Prometheus in an C(Authorization) header (bearer scheme). Never logged.
            type: str
      variables:
        description:
          - Extra values for C(${name}) placeholders in O(analysis.checks[].query).
          - The engine always sets V(namespace), V(app), V(version), V(slot) and V(track); they cannot be
            overridden here.
        type: dict
        default: {}
      checks:
        description:
          - The checks, each with a unique O(analysis.checks[].name).
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description:
              - Name the module's phase options refer to; also the name in results.
            type: str
            required: true
          type:
            description:
              - V(prometheus) measures a PromQL instant query against O(analysis.checks[].min) and
                O(analysis.checks[].max), V(http) a GET request.
              - V(job) runs a Kubernetes Job per sample (O(analysis.checks[].job)); exit code V(0) is an ok sample,
                any other a failed sample.
              - V(compare) measures the same query for the judged track and for O(analysis.checks[].baseline_track)
                at each sample and, after O(analysis.checks[].samples) samples, fails when a one-sided Mann-Whitney U
                test finds the judged track worse with p < O(analysis.checks[].alpha). No fixed bound is needed.
                It compares C(track) labels, so it suits canary releases; blue/green slots carry no track.
            type: str
            required: true
            choices: [compare, http, job, prometheus]
          query:
            description:
              - PromQL template for a V(prometheus) or V(compare) check; exactly one of O(analysis.checks[].query) and
                O(analysis.checks[].metric) is required.
              - A V(compare) query must contain C(${track}). It is filled once with the judged track (the module's
                track, V(canary) when it sets none) and once with O(analysis.checks[].baseline_track). Do not select
                C(${version}) in it, because the baseline runs another version.
              - Placeholders C(${name}) are replaced by plain substitution, not Jinja. Inside a quoted string
                the value is escaped for PromQL; outside quotes it must be a plain token (letters, digits, C(_),
                C(.), C(:)), so a value cannot change the query's structure.
              - Available names are V(namespace), V(app), V(version), V(slot), V(track), V(window),
                V(quantile) and the keys of O(analysis.variables).
              - The query must return one series or a scalar (aggregate with C(sum) or C(max)).
            type: str
          metric:
            description:
              - A built-in query over the User Service metrics, for the pods being judged.
              - V(error_ratio) is the share of C(http_requests_total) with a 5xx C(status_code) over
                O(analysis.checks[].window). It is V(0) when those pods served traffic without a 5xx (the
                numerator falls back to C(vector(0)) because the app creates its 5xx series on the first 5xx) and
                no data when they served nothing.
              - V(latency_quantile) is the O(analysis.checks[].quantile) of C(http_request_duration_seconds)
                over O(analysis.checks[].window), in seconds; no traffic means no data.
              - Both select the C(namespace) and C(app) labels, and C(version), C(slot) and C(track) for each of
                them the module knows. In a V(compare) check they select C(namespace), C(app) and C(track) only.
                A blue/green release sets C(version) and C(slot), so a config-only release (same version) measures
                the new slot only. The series must carry these labels. The local
                platform's scrape configuration adds C(slot) and C(track) from the pod labels
                C(deploy.userservice.io/slot) and C(deploy.userservice.io/track); with C(kubernetes_sd), relabel
                those pod labels the same way.
            type: str
            choices: [error_ratio, latency_quantile]
          quantile:
            description:
              - Quantile for V(latency_quantile) (and the V(quantile) placeholder), between 0 and 1.
            type: float
            default: 0.99
          window:
            description:
              - Range of the C(rate()) in built-in queries (and the V(window) placeholder), a Prometheus duration.
            type: str
            default: 1m
          url:
            description:
              - For an V(http) check, a URL to GET directly from where the module runs.
              - Credentials in the URL (C(https://user:password@host/)) are sent as basic authentication and shown
                as C(***@) in results and messages.
              - Exactly one of O(analysis.checks[].url), O(analysis.checks[].service) and O(analysis.checks[].pod)
                is required.
            type: str
          service:
            description:
              - For an V(http) check, a Service in the release namespace reached through the API server's
                service proxy.
            type: str
          pod:
            description:
              - For an V(http) check, a pod in the release namespace reached through the API server's pod proxy.
            type: str
          port:
            description:
              - Port (number or, for a Service, name) for O(analysis.checks[].service) and
                O(analysis.checks[].pod).
            type: str
          path:
            description:
              - Path (and query string) to GET through the service or pod proxy.
            type: str
            default: /
          scheme:
            description:
              - Scheme the API server uses to reach the service or pod.
            type: str
            choices: [http, https]
            default: http
          expected_status:
            description:
              - HTTP statuses that make a sample ok. When not set, any 2xx status does.
            type: list
            elements: int
          json_path:
            description:
              - Dotted path of a field in the JSON answer (V(version), V(items.0.id)).
              - A missing or null field is no data. O(analysis.checks[].min) and O(analysis.checks[].max) apply
                to this field.
            type: str
          condition:
            description:
              - How the field at O(analysis.checks[].json_path) is compared with O(analysis.checks[].value).
            type: str
            choices: ['==', '!=', '<', '<=', '>', '>=', in]
            default: '=='
          value:
            description:
              - Value the field at O(analysis.checks[].json_path) is compared with; a list for V(in).
            type: raw
          request_timeout:
            description:
              - Seconds to wait for one HTTP answer.
            type: float
            default: 5.0
          validate_certs:
            description:
              - Whether to verify the TLS certificate of an V(https) O(analysis.checks[].url).
            type: bool
            default: true
          job:
            description:
              - The Job a V(job) check runs, one per sample, in the release namespace. It is named
                C(<app>-<check>-<run>-<sample>) (shortened to 63 characters), labelled
                C(app.kubernetes.io/managed-by=userservice.deploy) and C(app.kubernetes.io/part-of=<app>) but never
                C(app.kubernetes.io/name), so no Service of the application routes traffic to it.
              - The Job has C(backoffLimit) V(0), C(activeDeadlineSeconds) O(analysis.checks[].job.timeout) and
                C(ttlSecondsAfterFinished) V(600), and its pod C(terminationGracePeriodSeconds) V(5). The pod runs
                as the restricted Pod Security Standard requires (C(runAsNonRoot), no privilege escalation, every
                capability dropped, seccomp C(RuntimeDefault)). The Job is deleted when its sample is taken.
              - A Job the API server refuses, a pod that cannot start (image pull errors, a config error), a pod
                evicted or OOM-killed, and a Job not finished within O(analysis.checks[].job.timeout) are errors, not
                failed samples.
              - O(analysis.checks[].interval) runs from the end of one Job to the start of the next. The other checks
                of the phase go on while a Job runs.
              - C(${name}) placeholders in O(analysis.checks[].job.image), O(analysis.checks[].job.command),
                O(analysis.checks[].job.args) and O(analysis.checks[].job.env) are filled by plain substitution
                from V(namespace), V(app), V(version), V(slot), V(track) and O(analysis.variables).
              - The run needs the verbs create, get and delete on C(jobs) (API group C(batch)), list on C(pods) and
                get on C(pods/log) in the release namespace.
            type: dict
            suboptions:
              image:
                description:
                  - Image of the check's one container; pin it by digest for a repeatable check.
                  - The image must run as a non-root user (a numeric C(USER)), or set
                    O(analysis.checks[].job.run_as_user).
                type: str
                required: true
              command:
                description:
                  - Entrypoint (the image's when not set).
                type: list
                elements: str
              args:
                description:
                  - Arguments (the image's when not set).
                type: list
                elements: str
              env:
                description:
                  - Environment variables, name to value. A value may also be a dict with the keys C(secret) (a Secret
                    of the release namespace) and C(key) (a key in it), read with C(secretKeyRef). Values are never
                    shown in results.
                type: dict
                default: {}
              timeout:
                description:
                  - Seconds the Job may take from its creation to its end, pulling the image included.
                type: float
                default: 300.0
              log_lines:
                description:
                  - Last lines of the container's log kept in the check result (and so in the failure record), each
                    cut to 300 characters. Bearer tokens, C(Authorization) values, JWTs, C(password=) style values
                    and URL credentials are replaced by C(***). V(0) keeps none.
                  - The log of an ok sample is kept only as the check's last C(logs), not in the sample.
                type: int
                default: 20
              service_account:
                description:
                  - ServiceAccount the pod runs as. Without it the pod gets no API token at all.
                type: str
              run_as_user:
                description:
                  - User id to run the container as (at least V(1)), for images whose C(USER) is a name or root.
                type: int
              resources:
                description:
                  - Container C(resources) (C(requests), C(limits)), for namespaces whose quota requires them.
                type: dict
          baseline_track:
            description:
              - For a V(compare) check, the C(track) label value of the pods to compare with.
            type: str
            default: stable
          direction:
            description:
              - For a V(compare) check, which way is worse. V(higher_is_worse) suits error ratios and latencies,
                V(lower_is_worse) throughput or success ratios.
            type: str
            choices: [higher_is_worse, lower_is_worse]
            default: higher_is_worse
          alpha:
            description:
              - For a V(compare) check, the significance level. The check fails when the one-sided p-value of the
                Mann-Whitney U test is below it. The test is exact (ties included) when the product of the two sample
                counts is at most 100, otherwise the normal approximation with tie and continuity corrections.
              - O(analysis.checks[].samples) must be large enough for the test to reach it. With V(0.05) that is at
                least V(4); V(8) to V(10) samples give the test real power.
            type: float
            default: 0.05
          min_difference:
            description:
              - For a V(compare) check, fail only when the medians also differ by more than this, in the worse
                direction (in the query's unit, for example V(0.005) for half a point of error ratio). A difference
                equal to it passes. Not set, any significant difference fails.
            type: float
          min:
            description:
              - Lowest acceptable value; a value equal to it is ok. A V(prometheus) check needs
                O(analysis.checks[].min), O(analysis.checks[].max) or both.
            type: float
          max:
            description:
              - Highest acceptable value, for example V(0.01) for a 1% error ratio. A value equal to it is ok.
            type: float
          interval:
            description:
              - Seconds between two samples. For a V(job) check, seconds from the end of one Job to the start of the
                next.
              - For a V(compare) check, an interval at least as long as O(analysis.checks[].window) keeps the samples
                from measuring the same requests twice.
            type: float
            default: 30.0
          initial_delay:
            description:
              - Seconds to wait before the first sample, so a C(rate()) window covers new traffic.
            type: float
            default: 0.0
          samples:
            description:
              - Number of samples to take. For a V(compare) check, the number of samples of each track the test
                compares (see O(analysis.checks[].alpha)).
            type: int
            default: 3
          failure_limit:
            description:
              - Failed samples tolerated; one more fails the check. V(0) fails on the first failed sample.
            type: int
            default: 0
          error_limit:
            description:
              - Errors in a row tolerated (like Argo Rollouts' C(consecutiveErrorLimit)); one more ends the check
                V(error). V(0) ends it on the first error.
              - An error is a sample that could not be taken (Prometheus unreachable or answering an error, a
                query it rejects or that returns several series, the API server not relaying a proxied check).
                A sample with a value or with no data resets the count.
              - With the default V(4), a Prometheus outage of up to four intervals only delays the verdict.
            type: int
            default: 4
          consecutive_success:
            description:
              - Pass as soon as this many samples in a row are ok (at most O(analysis.checks[].samples)).
              - Only samples with data count. A no-data sample that O(analysis.checks[].on_no_data=pass) counts as
                ok keeps the run going but never adds to it, so a check never passes on no data alone.
              - Not allowed on a V(compare) check, which decides on all its samples at once.
            type: int
          on_no_data:
            description:
              - What a sample without data (empty result, NaN, missing JSON field; for V(compare), no data for either
                track) counts as.
              - V(fail) counts a failed sample. V(pass) counts an ok sample (but not towards
                O(analysis.checks[].consecutive_success)). V(inconclusive) counts neither, and a check that does not
                fail ends V(inconclusive) if any sample had no data.
              - A V(compare) check tests only the samples with data for both tracks. When too few have data for the
                test to reach O(analysis.checks[].alpha), it passes with V(pass) and is V(inconclusive) otherwise.
              - A V(job) check never has no data.
            type: str
            choices: [fail, inconclusive, pass]
            default: fail
"""
