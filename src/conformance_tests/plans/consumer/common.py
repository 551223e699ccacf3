"""Building blocks of the consumer test plan: command templates, placeholders and the step that
runs the consumer under test while the simulated peers record what it sends.

A Document Consumer is driven by its user, so each step runs an operator-given command template
(one per kind of action: ``query``, ``retrieve``, ``fetch``, ``wado``, ``objectref``) with placeholders
filled in from the simulated peers and the test data, inside
:meth:`~conformance_tests.simulators.consumer_peers.ConsumerPeers.observe`. The step's judges then
look at (a) what the peers received and (b) what the command produced: its exit status, its
output and the files in ``{out}``.

The run context holds the peers (:data:`PEERS_KEY`), the templates (:data:`COMMANDS_KEY`,
kind -> template), the directory under which each step gets a fresh ``{out}``
(:data:`OUT_KEY`) and the command timeout (:data:`TIMEOUT_KEY`).
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from conformance_tests.data.consumer import REPOSITORY_ID, SOURCE_IDS
from conformance_tests.evidence import Exchange
from conformance_tests.model import ActionStep, Check, Transaction
from conformance_tests.simulators.consumer_peers import CONTEXT_KEY as PEERS_KEY
from conformance_tests.simulators.consumer_peers import PATHS, ConsumerPeers
from conformance_tests.simulators.recording import ReceivedMessage, read_message
from conformance_tests.state import CaseState

__all__ = [
    "Behaviour",
    "COMMANDS_KEY",
    "DEFAULT_BATCH",
    "EXPLICIT_VR_LE",
    "Invocation",
    "Judge",
    "KINDS",
    "OUT_KEY",
    "PEERS_KEY",
    "PLACEHOLDERS",
    "TIMEOUT_KEY",
    "consumer_step",
    "exit_status",
    "peers",
]

COMMANDS_KEY: Final = "consumer-commands"
OUT_KEY: Final = "consumer-out-dir"
TIMEOUT_KEY: Final = "consumer-timeout"
DEFAULT_BATCH: Final = 100
EXPLICIT_VR_LE: Final = "1.2.840.10008.1.2.1"
#: The kinds of command a case runs (each an option of the plan, enabled by its template).
KINDS: Final = {
    "query": "run a stored query for {patient} at {registry} (ITI-18) and show the result",
    "retrieve": "retrieve {unique_ids} from {repository} (ITI-43) into {out}",
    "fetch": "the imaging flow for {patient}: ITI-18, ITI-43 of the manifests, RAD-69 to {source} / {source2}, "
    "into {out}",
    "wado": "the imaging flow for {patient} by WADO: ITI-18, ITI-43 of the manifests, RAD-55 WADO-URI GETs to "
    "{wado} / {wado2} (the sources {source_id} / {source2_id}), into {out}",
    "objectref": "FindDocuments for {patient} with returnType ObjectRef, then GetDocuments (LeafClass) for the "
    "references",
}
#: Every placeholder a template may use, and what it is filled with.
PLACEHOLDERS: Final = {
    "registry": "ITI-18 endpoint of the registry simulator",
    "repository": "ITI-43 endpoint of the repository simulator",
    "repository_id": f"repositoryUniqueId of the repository simulator ({REPOSITORY_ID})",
    "source": "RAD-69 endpoint of imaging source simulator 1",
    "source_id": f"repositoryUniqueId (Retrieve Location UID) of source 1 ({SOURCE_IDS[0]})",
    "source2": "RAD-69 endpoint of imaging source simulator 2",
    "source2_id": f"repositoryUniqueId (Retrieve Location UID) of source 2 ({SOURCE_IDS[1]})",
    "wado": "RAD-55 WADO-URI endpoint of imaging source simulator 1",
    "wado2": "RAD-55 WADO-URI endpoint of imaging source simulator 2",
    "patient": "the test patient (affinity-domain CX)",
    "unique_id": "the uniqueId of the (first) document to retrieve",
    "unique_ids": "the uniqueIds to retrieve, one argument each (use as a word of its own)",
    "study_uid": "the Study Instance UID of the CT test study",
    "batch": f"the most instances per RAD-69 request the case allows ({DEFAULT_BATCH} unless the case says)",
    "transfer_syntax": f"a transfer syntax every simulated source serves ({EXPLICIT_VR_LE})",
    "out": "a fresh empty directory for what the command produces (files are compared byte for byte)",
}
_EXPAND: Final = "{unique_ids}"


@dataclass(slots=True, eq=False)
class Invocation:
    """One run of the consumer's command and what the peers received meanwhile."""

    kind: str
    values: dict[str, str]
    out: Path
    exchange: Exchange
    exit_code: int | None
    stdout: bytes
    received: list[ReceivedMessage] = field(default_factory=list)

    def to(self, peer: str) -> list[ReceivedMessage]:
        """The requests that reached the peer ``peer`` (``registry``, ``repository``, ``source``...)."""
        return [m for m in self.received if m.path == PATHS[peer]]


Judge = Callable[[CaseState, Invocation], Iterable[Check]]
Values = Callable[[CaseState, ConsumerPeers], Mapping[str, str | Sequence[str]]]
Behaviour = Callable[[ConsumerPeers], AbstractContextManager[object]]


def peers(state: CaseState) -> ConsumerPeers:
    found = state.get(PEERS_KEY)
    if not isinstance(found, ConsumerPeers):
        raise LookupError("this run has no consumer peer simulators (see `xds conformance run --actor consumer`)")
    return found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _arguments(template: str, values: Mapping[str, str], many: Sequence[str]) -> list[str]:
    """The command's arguments: each word of the template with its placeholders filled in; the
    word ``{unique_ids}`` becomes one argument per uniqueId (no shell is involved)."""
    arguments: list[str] = []
    for word in shlex.split(template):
        if word == _EXPAND:
            arguments += list(many)
        else:
            arguments.append(word.format(**values))
    return arguments


def _run(arguments: list[str], *, label: str, timeout: float) -> tuple[Exchange, int | None, bytes]:
    exchange = Exchange(label=label, protocol="command", target=shlex.join(arguments), started=_now())
    began = time.monotonic()
    try:
        done = subprocess.run(arguments, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        exchange.error = f"{type(exc).__name__}: {exc}"
        return exchange, None, b""
    finally:
        exchange.seconds = time.monotonic() - began
    exchange.response_status = f"exit {done.returncode}"
    exchange.response_body = done.stdout + (b"\n[stderr]\n" + done.stderr if done.stderr else b"")
    return exchange, done.returncode, done.stdout


def _defaults(sim: ConsumerPeers, out: Path) -> dict[str, str]:
    return {
        "registry": sim.url("registry"),
        "repository": sim.url("repository"),
        "repository_id": REPOSITORY_ID,
        "source": sim.url("source"),
        "source_id": SOURCE_IDS[0],
        "source2": sim.url("source2"),
        "source2_id": SOURCE_IDS[1],
        "wado": sim.url("wado"),
        "wado2": sim.url("wado2"),
        "patient": sim.data.patient_id,
        "study_uid": sim.data.images.study("ct").study_uid,
        "batch": str(DEFAULT_BATCH),
        "transfer_syntax": EXPLICIT_VR_LE,
        "out": str(out),
    }


def exit_status(*, zero: bool) -> Judge:
    """The command's exit status: 0 for a transaction that succeeded, non-zero when the consumer
    met an error it must surface to its user (ITI TF-2a §3.18.4.1.3; ITI TF-2b §3.43.4.2)."""

    def judge(state: CaseState, run: Invocation) -> list[Check]:
        wanted = "0" if zero else "non-zero"
        held = run.exit_code == 0 if zero else run.exit_code not in (0, None)
        return [Check("exit status", held, f"expected {wanted}, got {run.exit_code}",
                      "the consumer reports the outcome of the transaction to its user")]  # fmt: skip

    return judge


def consumer_step(
    name: str,
    purpose: str,
    kind: str,
    *,
    judges: Sequence[Judge],
    outcome: str,
    values: Values | None = None,
    behaviour: Behaviour | None = None,
    transaction: Transaction = Transaction.ITI18,
) -> ActionStep:
    """Run the ``kind`` command of the consumer under test, then judge what happened."""

    def perform(state: CaseState) -> tuple[list[Exchange], list[Check]]:
        sim = peers(state)
        templates: Mapping[str, str] = state.get(COMMANDS_KEY) or {}
        template = templates.get(kind)
        if not template:
            return [], [Check("command template", False, f"no template for {kind!r} (--command {kind}=...)", "setup")]
        base = state.get(OUT_KEY)
        out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=str(base) if base else None))
        filled = _defaults(sim, out)
        many: list[str] = []
        for key, value in (values(state, sim) if values is not None else {}).items():
            if isinstance(value, str):
                filled[key] = value
            else:
                many = list(value)
                filled[key] = " ".join(value)
                filled.setdefault("unique_id", many[0] if many else "")
        try:
            arguments = _arguments(template, filled, many)
        except (KeyError, IndexError, ValueError) as exc:
            detail = f"the {kind} template cannot be filled: {type(exc).__name__}: {exc} (see `list --steps`)"
            return [], [Check("command template", False, detail, "setup")]
        timeout = float(state.get(TIMEOUT_KEY) or 120.0)
        with ExitStack() as stack:
            seen = stack.enter_context(sim.observe())
            if behaviour is not None:
                stack.enter_context(behaviour(sim))
            exchange, code, stdout = _run(arguments, label=f"consumer {kind} command", timeout=timeout)
        run = Invocation(kind=kind, values=filled, out=out, exchange=exchange, exit_code=code, stdout=stdout)
        run.received = [read_message(e) for e in seen]
        if exchange.error:
            return [exchange, *seen], [Check("command ran", False, exchange.error, "setup")]
        checks: list[Check] = []
        for judge in judges:
            try:
                checks += list(judge(state, run))
            except Exception as exc:  # a judge that meets something it cannot read fails, not crashes
                checks.append(Check("judging", False, f"{type(exc).__name__}: {exc}", "test step"))
        return [exchange, *seen], checks

    return ActionStep(name=name, purpose=purpose, transaction=transaction, perform=perform, outcome=outcome)
