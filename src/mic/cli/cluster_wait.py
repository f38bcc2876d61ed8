"""After `mic clusters add|update`: wait for MIC to say whether the cluster connects.

The API stores a registration and answers at once, before MIC has talked to the cluster, so a
rejected token or an unreachable server only shows later, in the cluster's `status`. Like
`kubectl rollout status` or `helm --wait`, the commands poll that status until it settles and
turn it into one line and an exit code, so neither a person nor a script has to run
`mic clusters get` to learn that the cluster does not work.

Nothing is rolled back when it does not: the registration stays stored and MIC keeps retrying
(a server that comes up later connects by itself), and the fix is `mic clusters update`. Every
message about a cluster that does not work says so, so no one adds it a second time.

The states are those of `mic.hub.status.ClusterState`: `connecting` is the only one that is
still on its way; `ready` means discovery worked and every watched resource completed its first
list. Every other one is an answer, though MIC retries: `unauthorized` (a 401 or 403), and
`unreachable` (a refused connection, a timeout, a failed TLS handshake or certificate check),
which MIC retries with a backoff that would outlast any sensible wait; `degraded` (connected,
but a resource cannot be watched: not served by the cluster, forbidden by its RBAC), which needs
a change too; `stopped`. Reporting the first of them at once, rather than hoping for a retry
until the time runs out, is what makes a wrong token fail in a second instead of ten.

The hint on what to do next follows the status' `reason` (`mic.hub.status.ClusterReason`), not
the wording of `lastError`: a `TLSVerifyFailed` asks for the CA that signed the server's
certificate. A MIC too old to send a reason gets the hint of the state alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mic.cli.client import MicClient, MicError
from mic.cli.output import cached_objects

DEFAULT_WAIT_SECONDS = 10.0
CONNECTED_STATE = "ready"
PENDING_STATES = frozenset({"connecting", ""})
"""Still on the way; "" is a status without a state (an older or a stub server): no answer yet."""
EXIT_NOT_CONNECTED = 1
"""Stored, but not connected (or not yet): an error like any other for the CLI's conventions
(1; 2 is for wrong options). stdout still holds the stored cluster with `-o json|yaml`."""

_POLL_DELAYS = (0.1, 0.2, 0.3, 0.5)
"""Seconds between status reads: quick at first (an emulated or nearby cluster connects in
tens of milliseconds), then twice a second, which costs MIC next to nothing."""


@dataclass(frozen=True)
class Outcome:
    """The cluster as last read, and whether waiting ran out before its state settled."""

    cluster: dict[str, Any]
    timed_out: bool

    @property
    def state(self) -> str:
        return str(_status(self.cluster).get("state") or "")

    @property
    def reason(self) -> str:
        """The status' `reason` (`TLSVerifyFailed`...); "" from a MIC that sends none."""
        return str(_status(self.cluster).get("reason") or "")

    @property
    def connected(self) -> bool:
        return not self.timed_out and self.state == CONNECTED_STATE


def wait_for_connection(
    api: MicClient,
    name: str,
    answer: dict[str, Any],
    wait_seconds: float,
) -> Outcome:
    """Read the cluster's status until it leaves `connecting` or `wait_seconds` pass.

    `answer` is what the POST/PUT returned: when its state has already settled, no request
    is made. A cluster removed meanwhile ends the wait with the API's 404, as any other read.
    """
    deadline = time.monotonic() + wait_seconds
    cluster = answer
    attempt = 0
    while not _settled(cluster):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(cluster, timed_out=True)
        time.sleep(min(_POLL_DELAYS[min(attempt, len(_POLL_DELAYS) - 1)], remaining))
        attempt += 1
        cluster = api.get_cluster(name)
    return Outcome(cluster, timed_out=False)


def _settled(cluster: Mapping[str, Any]) -> bool:
    return str(_status(cluster).get("state") or "") not in PENDING_STATES


def _status(cluster: Mapping[str, Any]) -> dict[str, Any]:
    status = cluster.get("status")
    return status if isinstance(status, dict) else {}


# --- what to tell the user ---------------------------------------------------------------


def connected_line(outcome: Outcome, name: str, done: str) -> str:
    """`cluster 'eu-1' added: connected (server v1.31.0), 7 objects cached`."""
    status = _status(outcome.cluster)
    version = status.get("serverVersion")
    line = f"cluster '{name}' {done}: connected" + (f" (server {version})" if version else "")
    counts = cached_objects(outcome.cluster)
    if counts:
        objects = sum(counts.values())
        line += f", {objects} object{'' if objects == 1 else 's'} cached"
    return line


def problem_line(outcome: Outcome, name: str, done: str, wait_seconds: float) -> str:
    """One line on why the cluster does not work yet, that it is stored all the same, and what to do."""
    stored = "The registration is stored and MIC keeps retrying"
    if outcome.timed_out:
        return (
            f"cluster '{name}' {done}, but it did not connect within {wait_seconds:g}s "
            f"(state: {outcome.state or 'unknown'}). {stored}; see 'mic clusters get {name}'"
        )
    reason = _reason(outcome)
    if outcome.state == "degraded":
        return (
            f"cluster '{name}' {done} and connected, but not every resource can be watched: {reason}. "
            f"{stored}; see 'mic clusters get {name}'"
        )
    hint = _fix_hint(outcome, name)
    return f"cluster '{name}' {done}, but MIC cannot connect to it: {reason}. {stored}; {hint}"


def _reason(outcome: Outcome) -> str:
    """The state, what it means when its name alone does not say, and MIC's last error."""
    last_error = _last_error(outcome)
    meaning = _meaning(outcome)
    if meaning:
        return f"{outcome.state}: {meaning}" + (f" ({last_error})" if last_error else "")
    return f"{outcome.state}: {last_error}" if last_error else outcome.state


def _meaning(outcome: Outcome) -> str | None:
    if outcome.state == "unauthorized":  # a 401 or a 403 (MIC's credentials may not even discover)
        return "the cluster refused MIC's credentials"
    if _certificate_failed(outcome):
        return "the server's certificate could not be verified"
    return None


def _fix_hint(outcome: Outcome, name: str) -> str:
    """What to do next, with the `mic clusters update` options the cluster's connection takes."""
    if outcome.state == "unauthorized":
        return f"fix its credentials with {_update_command(outcome, name)}"
    if _certificate_failed(outcome):
        return f"give the CA that signed it with {_update_command(outcome, name, ca=True)}"
    if outcome.state == "unreachable":
        return f"check that MIC's host can reach the server, or fix it with {_update_command(outcome, name)}"
    return f"see 'mic clusters get {name}'"


def _update_command(outcome: Outcome, name: str, *, ca: bool = False) -> str:
    connection = outcome.cluster.get("connection")
    kind = connection.get("type") if isinstance(connection, dict) else None
    options = {
        "token": "--server URL --token-file FILE" + (" --ca-file CA.pem" if ca else ""),
        "kubeconfig": "--kubeconfig FILE",
        "kubeconfigFile": "--kubeconfig-on-server PATH",
    }.get(str(kind))
    if options is None:  # inCluster: MIC's own service account, nothing the CLI could send
        return f"'mic clusters update {name}' and another connection, or by fixing the cluster's RBAC"
    return f"'mic clusters update {name} {options}'"


TLS_VERIFY_FAILED = "TLSVerifyFailed"
"""The reason of a server certificate that failed verification (not trusted, or not naming the host)."""


def _certificate_failed(outcome: Outcome) -> bool:
    """A TLS handshake that failed on the server's certificate, which MIC reports as unreachable."""
    return outcome.state == "unreachable" and outcome.reason == TLS_VERIFY_FAILED


def _last_error(outcome: Outcome) -> str:
    return " ".join(str(_status(outcome.cluster).get("lastError") or "").split())


def not_connected_error(outcome: Outcome, name: str, done: str, wait_seconds: float) -> MicError:
    """The error that ends the command after its output: one line, `EXIT_NOT_CONNECTED`."""
    return MicError(problem_line(outcome, name, done, wait_seconds), exit_code=EXIT_NOT_CONNECTED)
