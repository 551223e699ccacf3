"""``conformance ...``: list the test plans, and run one against a peer.

::

    xds conformance list [--actor registry] [--steps]
    xds conformance run --actor registry --endpoint http://host:8010/registry \\
        --mllp host:2575 --junit results.xml --html report.html
    xds conformance run --actor repository --endpoint http://host:8020/repository \\
        --registry-sim-port 9010      # the repository sends ITI-42 to http://127.0.0.1:9010/registry
    xds conformance run --actor imaging-source --endpoint http://host:8030/imaging-source \\
        --source-id 1.3.6.1.4.1.21367.13.80.110 --dicom host:11112 --dicom-ae XDSEDGE \\
        --wado http://host:8030/wado
    xds conformance run --actor imaging-source --endpoint http://host:8030/imaging-source \
        --source-id 1.3.6.1.4.1.21367.13.80.110 --dicom host:11112 --dicom-ae XDSEDGE --suite submit \
        --registry-sim-port 9020 \
        --command submit='my-edge share {patient} --study {study_uid} --to {repository}'
    xds conformance run --actor consumer \
        --command query='my-consumer query --registry {registry} --patient {patient}' \
        --command retrieve='my-consumer get {unique_ids} --from {repository} --repo-id {repository_id} --dir {out}' \
        --command fetch='my-consumer images --registry {registry} --repository {repository} --patient {patient} \
            --source {source_id}={source} --source {source2_id}={source2} --batch {batch} --dir {out}'
    xds conformance dicom-data DIR    # the imaging-source test data as files, and its UIDs

Patients reach the peer through ITI-8 (``--mllp``), a pre-load command run per patient
(``--preload-command 'xds registry patient add {pid} --db sqlite:///registry.sqlite'``) or a list of
ids registered beforehand (``--patient-id``, once per patient, in the order ``list`` shows).
The imaging-source plan loads its DICOM test studies into the source first: by C-STORE
(``--dicom HOST:PORT --dicom-ae AE``), a command run per file (``--preload-command 'CMD {file}'``;
``{sop_uid}``, ``{series_uid}``, ``{study_uid}`` are filled in too) or not at all (``--preloaded``,
after loading the files ``dicom-data`` writes; their UIDs are the same on every run).
The imaging-source ``submit`` suite (RAD-68, NIST ids_2018-4801) runs a Document Repository
simulator at ``http://HOST:PORT/repository`` (``--registry-sim-host``/``--registry-sim-port``) and
makes the source share each test study there: ``--command submit=TEMPLATE`` runs a command per
study (``list --actor imaging-source`` shows the placeholders), or ``--option submit`` alone shows
what to do by hand; either way the runner waits ``--submit-timeout`` seconds for the submission.
The consumer plan drives the consumer under test through command templates (one per kind of
case: ``--command KIND=TEMPLATE``, or ``--consumer-command TEMPLATE`` for every kind); ``list
--actor consumer --steps`` shows the kinds and the placeholders. A case whose kind has no template
is skipped. The simulated registry, repository and imaging sources listen on
``--registry-sim-host``/``--registry-sim-port``.
Cases of an option the peer does not declare (``--option NAME``; ``list`` shows each plan's
options) are reported as not applicable, never as passed. An ``https://`` endpoint declares the
``tls`` option; ``--ca-cert`` names the CAs to trust and ``--client-cert``/``--client-key`` our
certificate for mutual TLS.
The exit status is 0 when every case passed (or was skipped or not applicable), 1 when one
failed, 2 for usage errors.
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import click
from rich.console import Console

from conformance_tests.console import ConsoleListener, summary_table
from conformance_tests.data.dicom import imaging_test_data, write_files
from conformance_tests.data.ids import DEFAULT_ASSIGNING_AUTHORITY
from conformance_tests.evidence import write_evidence
from conformance_tests.instances import CONTEXT_KEY as INSTANCES_KEY
from conformance_tests.instances import (
    DEFAULT_CALLING_AE,
    CommandInstances,
    InstanceSource,
    PreloadedInstances,
    StoreInstances,
)
from conformance_tests.patients import CommandPatients, FeedPatients, GivenPatients, PatientSource
from conformance_tests.plans import ACTORS, PLANS, plan_for
from conformance_tests.plans.consumer.common import COMMANDS_KEY, KINDS, OUT_KEY, PLACEHOLDERS, TIMEOUT_KEY
from conformance_tests.plans.imaging_source.common import SOURCE_ID_KEY, WADO_KEY
from conformance_tests.plans.imaging_source.submit import OPTION as SUBMIT_OPTION
from conformance_tests.plans.imaging_source.submit import PLACEHOLDERS as SUBMIT_PLACEHOLDERS
from conformance_tests.plans.registry.merge import OPTION as MERGE_OPTION
from conformance_tests.plans.imaging_source.submit import SUBMIT_KEY, SubmitSettings
from conformance_tests.plans.imaging_source.wado import OPTION as WADO_OPTION
from conformance_tests.plans.repository.common import TLS_OPTION
from conformance_tests.report import write_html, write_junit
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaError, SchemaSet, default_schema_dir
from conformance_tests.simulators.consumer_peers import CONTEXT_KEY as PEERS_KEY
from conformance_tests.simulators.consumer_peers import ConsumerPeers
from conformance_tests.simulators.registry import CONTEXT_KEY as SIMULATOR_KEY
from conformance_tests.simulators.registry import RegistrySimulator
from conformance_tests.simulators.repository import CONTEXT_KEY as REPOSITORY_KEY
from conformance_tests.simulators.repository import RepositorySimulator

__all__ = ["conformance"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def conformance() -> None:
    """Connectathon-style conformance tests that judge a peer over the wire."""


@conformance.command("list")
@click.option("--actor", type=click.Choice(ACTORS), help="Only this actor's plan")
@click.option("--steps", is_flag=True, help="Show every step and its expected outcome")
def list_plans(actor: str | None, steps: bool) -> None:
    """List the test plans: suites, test cases, TF sections and (with --steps) expected outcomes."""
    console = Console(highlight=False)
    for name in [actor] if actor else list(ACTORS):
        if name not in PLANS:
            console.print(f"[bold]{name}[/]: no test plan yet")
            continue
        plan = plan_for(name)
        console.print(f"[bold]{name}[/]: {plan.title}")
        fed = [r for r in plan.patient_roles if r in plan.fed_roles]
        if fed:
            console.print(f"  patients (--patient-id order): {', '.join(fed)}")
        for simulator in plan.simulators:
            console.print(f"  simulated peer: {simulator} (started by `run`; see --registry-sim-port)")
        for option, text in plan.options.items():
            console.print(f"  option {option}: {text}")
        if name == "imaging-source":
            _show_test_data(console)
            console.print("  submit placeholders (--command submit=TEMPLATE; filled per study, no shell):")
            for key, text in SUBMIT_PLACEHOLDERS.items():
                console.print(f"    {{{key}}}".ljust(22) + text, markup=False)
        if name == "consumer":
            _show_commands(console)
        for suite in plan.suites:
            console.print(f"  [bold]suite {suite.name}[/]: {suite.title}")
            for case in suite.cases:
                extra = f" [yellow](option {case.option})[/]" if case.option else ""
                console.print(f"    {case.id:20} {case.title}{extra}")
                console.print(f"    {'':20} [dim]{case.tf}" + (f"; {case.reference}" if case.reference else "") + "[/]")
                if steps:
                    for n, step in enumerate(case.steps, start=1):
                        label = step.transaction_label or "-"
                        console.print(f"    {'':22}{n:2}. {step.name} [{label}] {step.purpose}", markup=False)
                        console.print(f"    {'':26}-> {step.expected()}", markup=False)


def _show_test_data(console: Console) -> None:
    data = imaging_test_data()
    console.print(f"  test data (write it with `xds conformance dicom-data DIR`), UID root {data.root}:")
    for study in data.studies:
        console.print(f"    study {study.key} {study.study_uid} (patient {study.patient_id})")
        for series_uid in study.series_uids:
            keys = ", ".join(i.key for i in study.series(series_uid))
            console.print(f"      series {series_uid}: {keys}")


def _show_commands(console: Console) -> None:
    console.print("  each option above is a kind of command; --consumer-command TEMPLATE serves every kind")
    console.print("  placeholders (filled per step; no shell is involved):")
    for name, text in PLACEHOLDERS.items():
        console.print(f"    {{{name}}}".ljust(22) + text, markup=False)


def _templates(generic: str | None, given: tuple[str, ...]) -> dict[str, str]:
    """Kind -> command template: ``--consumer-command`` for every kind, ``--command`` per kind."""
    templates = {kind: generic for kind in KINDS} if generic else {}
    for item in given:
        kind, sep, template = item.partition("=")
        if not sep or kind.strip() not in KINDS or not template.strip():
            raise click.BadParameter(f"{item!r} is not KIND=TEMPLATE (kinds: {', '.join(KINDS)})", param_hint="--command")
        templates[kind.strip()] = template.strip()
    return templates


def _submit_template(given: tuple[str, ...]) -> str | None:
    """The imaging-source plan's ``--command submit=TEMPLATE`` (its only kind)."""
    template = None
    for item in given:
        kind, sep, text = item.partition("=")
        if not sep or kind.strip() != SUBMIT_OPTION or not text.strip():
            raise click.BadParameter(f"{item!r} is not {SUBMIT_OPTION}=TEMPLATE", param_hint="--command")
        template = text.strip()
    return template


@conformance.command("dicom-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def dicom_data(directory: Path) -> None:
    """Write the imaging-source test data (Part 10 files) into DIRECTORY and list their UIDs.

    Load them into the source and run with --preloaded; the files are the same on every run."""
    data = imaging_test_data()
    paths = write_files(data, directory)
    lines = ["file\tstudy\tseries\tSOP instance\tSOP class\ttransfer syntax"]
    lines += [
        f"{i.file_name}\t{i.study_uid}\t{i.series_uid}\t{i.sop_uid}\t{i.sop_class_uid}\t{i.transfer_syntax}"
        for i in data.instances
    ]
    (directory / "uids.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    click.echo(f"{len(paths)} instances written to {directory} (UIDs in {directory / 'uids.tsv'})")
    for line in lines[1:]:
        click.echo("  " + line.replace("\t", "  "))


def _instances(
    stack: ExitStack,
    *,
    dicom: str | None,
    dicom_ae: str | None,
    calling_ae: str,
    preload: str | None,
    preloaded: bool,
    timeout: float,
) -> InstanceSource:
    """How the imaging-source test data reaches the source (exactly one way)."""
    given = [name for name, value in (("--dicom", dicom), ("--preload-command", preload), ("--preloaded", preloaded)) if value]
    if len(given) != 1:
        raise click.UsageError(
            "the imaging-source test data must reach the source in one way: --dicom HOST:PORT --dicom-ae AE "
            "(C-STORE), --preload-command 'CMD {file}' or --preloaded" + (f" (given: {', '.join(given)})" if given else "")
        )
    if dicom:
        host, _, port = dicom.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("expected HOST:PORT", param_hint="--dicom")
        if not dicom_ae:
            raise click.UsageError("--dicom needs --dicom-ae (the AE title of the source's Storage SCP)")
        return StoreInstances(host, int(port), called_ae=dicom_ae, calling_ae=calling_ae, timeout=timeout)
    if preload:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xds-conformance-dicom-")))
        return CommandInstances(preload, directory, timeout=max(timeout, 60.0))
    return PreloadedInstances()


def _patients(
    mllp: str | None, preload: str | None, patient_ids: tuple[str, ...], timeout: float, *, needed: bool = True
) -> PatientSource:
    if not needed:
        # The plan feeds no patient to the peer (e.g. a repository: the simulated registry
        # knows every patient).
        return GivenPatients(patient_ids)
    if patient_ids:
        return GivenPatients(patient_ids)
    if preload:
        return CommandPatients(preload, timeout=max(timeout, 60.0))
    if mllp:
        host, _, port = mllp.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter("expected HOST:PORT", param_hint="--mllp")
        return FeedPatients(host, int(port), timeout=timeout)
    raise click.UsageError(
        "test patients must reach the peer: give --mllp HOST:PORT (ITI-8 feed), "
        "--preload-command 'CMD {pid}' or --patient-id (once per patient)"
    )


@conformance.command("run")
@click.option("--actor", type=click.Choice(ACTORS), required=True, help="The actor under test")
@click.option("--endpoint", help="SOAP endpoint URL of the peer (all actors but the consumer)")
@click.option("--mllp", metavar="HOST:PORT", help="The peer's ITI-8 MLLP listener (patients are fed through it)")
@click.option(
    "--preload-command",
    metavar="CMD",
    help="Run per patient instead of ITI-8 ({pid}, {id}, {authority} are filled in); for the imaging-source "
    "plan, run per DICOM test file ({file}, {sop_uid}, {series_uid}, {study_uid})",
)
@click.option(
    "--patient-id", "patient_ids", multiple=True, metavar="CX", help="A patient registered beforehand (repeat; taken by the roles `list` shows, in order, for the suites run)"
)
@click.option("--suite", "suites", multiple=True, help="Run only this suite (repeat)")
@click.option("--case", "cases", multiple=True, help="Run only this test case and its prerequisites (repeat)")
@click.option("--option", "options", multiple=True, help="Enable an optional suite part, e.g. mpq (repeat)")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the HTML report here")
@click.option("--evidence-dir", type=click.Path(file_okay=False, path_type=Path), help="Also file every message here")
@click.option(
    "--schemas",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Schema directory [default: ../shared/schemas]",
)
@click.option(
    "--assigning-authority", default=DEFAULT_ASSIGNING_AUTHORITY, help="Affinity domain OID of the test patient ids"
)
@click.option("--timeout", type=float, default=60.0, help="Seconds to wait for each reply")
@click.option("--insecure", is_flag=True, help="Do not verify the peer's TLS certificate")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM file of the CA(s) that signed the peer's TLS certificate [default: the system's CAs]",
)
@click.option(
    "--client-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Our TLS client certificate (PEM; may hold the key too), for a peer that asks for one (mutual TLS)",
)
@click.option(
    "--client-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The key of --client-cert (PEM)"
)
@click.option(
    "--registry-sim-host", default="127.0.0.1", help="Address of the simulated peers (registry simulator of the "
    "repository plan, repository simulator of the imaging-source plan, peers of the consumer plan)"
)
@click.option(
    "--registry-sim-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Port of the simulated peers; configure the repository to send ITI-42 to http://HOST:PORT/registry, "
    "the imaging source to send RAD-68 to http://HOST:PORT/repository (0: a free port, shown at start)",
)
@click.option("--source-id", metavar="OID", help="The imaging source's repositoryUniqueId (imaging-source plan)")
@click.option("--dicom", metavar="HOST:PORT", help="The imaging source's Storage SCP: the test data is sent by C-STORE")
@click.option("--dicom-ae", metavar="AE", help="AE title of the Storage SCP given by --dicom")
@click.option("--calling-ae", default=DEFAULT_CALLING_AE, help="Our AE title for C-STORE")
@click.option("--preloaded", is_flag=True, help="The imaging-source test data was loaded beforehand (see dicom-data)")
@click.option("--wado", "wado", metavar="URL", help="The imaging source's WADO-URI endpoint (enables the wado suite)")
@click.option(
    "--consumer-command", metavar="TEMPLATE", help="Consumer plan: the command template of every kind (see list --steps)"
)
@click.option(
    "--command", "commands", multiple=True, metavar="KIND=TEMPLATE",
    help=f"Consumer plan: the command template of one kind ({', '.join(KINDS)}; repeat); imaging-source plan: "
    "submit=TEMPLATE, how the source is made to share a study (RAD-68)",
)
@click.option(
    "--submit-timeout", type=float, default=120.0,
    help="Imaging-source submit suite: seconds to wait for the RAD-68 of each study",
)
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Consumer plan: keep each step's {out} directory under here [default: a temporary directory]",
)
@click.option("-v", "--verbose", is_flag=True, help="Show every failed check as it happens")
def run(
    actor: str,
    endpoint: str | None,
    mllp: str | None,
    preload_command: str | None,
    patient_ids: tuple[str, ...],
    suites: tuple[str, ...],
    cases: tuple[str, ...],
    options: tuple[str, ...],
    junit: Path | None,
    html_path: Path | None,
    evidence_dir: Path | None,
    schemas: Path | None,
    assigning_authority: str,
    timeout: float,
    insecure: bool,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    registry_sim_host: str,
    registry_sim_port: int,
    source_id: str | None,
    dicom: str | None,
    dicom_ae: str | None,
    calling_ae: str,
    preloaded: bool,
    wado: str | None,
    consumer_command: str | None,
    commands: tuple[str, ...],
    out_dir: Path | None,
    submit_timeout: float,
    verbose: bool,
) -> None:
    """Run ACTOR's test plan against the peer at ENDPOINT."""
    console = Console(highlight=False)
    try:
        plan = plan_for(actor)
    except LookupError as exc:
        raise click.UsageError(str(exc)) from None
    if wado and WADO_OPTION in plan.options and WADO_OPTION not in options:
        options = (*options, WADO_OPTION)
    # An https:// endpoint declares TLS (test 12028); --option tls with http:// makes it fail.
    if endpoint and endpoint.lower().startswith("https://") and TLS_OPTION in plan.options and TLS_OPTION not in options:
        options = (*options, TLS_OPTION)
    # A registry fed over ITI-8 can be merged (ADT^A40): the merge suite runs; pre-loaded
    # patients cannot be, so without --mllp it is not applicable.
    if mllp and MERGE_OPTION in plan.options and MERGE_OPTION not in options:
        options = (*options, MERGE_OPTION)
    if insecure and ca_cert:
        raise click.UsageError("--insecure and --ca-cert exclude each other")
    if client_key and not client_cert:
        raise click.UsageError("--client-key needs --client-cert")
    templates = _templates(consumer_command, commands) if actor == "consumer" else {}
    submit_template = _submit_template(commands) if actor == "imaging-source" else None
    if submit_template and SUBMIT_OPTION not in options:
        options = (*options, SUBMIT_OPTION)
    if actor == "consumer":
        if not templates:
            raise click.UsageError("the consumer plan needs --consumer-command TEMPLATE or --command KIND=TEMPLATE")
        options = (*options, *[kind for kind in templates if kind not in options])
    elif not endpoint:
        raise click.UsageError(f"the {actor} plan needs --endpoint URL")
    unknown = [o for o in options if o not in plan.options]
    if unknown:
        raise click.BadParameter(
            f"unknown option {', '.join(unknown)} (have: {', '.join(plan.options) or 'none'})", param_hint="--option"
        )
    directory = schemas or default_schema_dir()
    if directory is None:
        raise click.UsageError(
            "no schema directory found: pass --schemas DIR (the directory holding schema/ebRS and schema/IHE)"
        )
    try:
        schema_set = SchemaSet.load(directory)
    except SchemaError as exc:
        raise click.UsageError(str(exc)) from None
    settings = {"actor": actor, "schemas": str(directory), "options": ", ".join(options) or "none"}
    if ca_cert:
        settings["trusted CAs"] = str(ca_cert)
    if client_cert:
        settings["client certificate"] = str(client_cert)
    with ExitStack() as stack:
        context: dict[str, object] = {}
        if "registry" in plan.simulators:
            simulator = RegistrySimulator(host=registry_sim_host, port=registry_sim_port, schemas=schema_set)
            try:
                stack.enter_context(simulator)
            except (OSError, RuntimeError) as exc:
                raise click.UsageError(f"the registry simulator cannot listen on {simulator.url}: {exc}") from None
            context[SIMULATOR_KEY] = simulator
            settings["registry simulator"] = simulator.url
            console.print(f"Registry simulator (ITI-42, ITI-18) listening at [bold]{simulator.url}[/]")
            console.print("The repository under test must send its Register Document Set-b requests there.")
        if "consumer-peers" in plan.simulators:
            peers = ConsumerPeers(host=registry_sim_host, port=registry_sim_port, assigning_authority=assigning_authority)
            try:
                stack.enter_context(peers)
            except (OSError, RuntimeError) as exc:
                raise click.UsageError(f"the simulated peers cannot listen on port {registry_sim_port}: {exc}") from None
            base = out_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xds-conformance-consumer-")))
            base.mkdir(parents=True, exist_ok=True)
            context.update({PEERS_KEY: peers, COMMANDS_KEY: templates, OUT_KEY: base, TIMEOUT_KEY: max(timeout, 120.0)})
            for name in ("registry", "repository", "source", "source2", "wado", "wado2"):
                settings[f"{name} simulator"] = peers.url(name)
                console.print(f"{name} simulator listening at [bold]{peers.url(name)}[/]")
            settings.update({f"command {kind}": template for kind, template in templates.items()})
            endpoint = "the consumer under test (command templates)"
        if actor == "imaging-source":
            if not source_id:
                raise click.UsageError("the imaging-source plan needs --source-id OID (the source's repositoryUniqueId)")
            if WADO_OPTION in options and not wado:
                raise click.UsageError("--option wado needs --wado URL")
            loader = _instances(
                stack,
                dicom=dicom,
                dicom_ae=dicom_ae,
                calling_ae=calling_ae,
                preload=preload_command,
                preloaded=preloaded,
                timeout=timeout,
            )
            context[INSTANCES_KEY] = loader
            context[SOURCE_ID_KEY] = source_id
            settings["source id"] = source_id
            settings["test data"] = loader.describe()
            if wado:
                context[WADO_KEY] = wado
                settings["WADO-URI"] = wado
            if SUBMIT_OPTION in options:
                repository = RepositorySimulator(host=registry_sim_host, port=registry_sim_port)
                try:
                    stack.enter_context(repository)
                except (OSError, RuntimeError) as exc:
                    raise click.UsageError(f"the repository simulator cannot listen on {repository.url}: {exc}") from None
                context[REPOSITORY_KEY] = repository
                context[SUBMIT_KEY] = SubmitSettings(
                    template=submit_template, timeout=submit_timeout, command_timeout=max(timeout, 120.0),
                    dicom=dicom or "", dicom_ae=dicom_ae or "", schemas=schema_set,
                    prompt=lambda text: console.print(f"[bold yellow]ACTION[/] {text}"),
                )  # fmt: skip
                settings["repository simulator"] = repository.url
                settings["submit"] = f"command {submit_template}" if submit_template else "manual (operator)"
                console.print(f"Repository simulator (RAD-68 / ITI-41) listening at [bold]{repository.url}[/]")
                console.print("The imaging source under test must send its RAD-68 submissions there.")
        config = RunConfig(
            endpoint=endpoint or "",
            schemas=schema_set,
            patients=_patients(mllp, preload_command, patient_ids, timeout, needed=bool(plan.fed_roles)),
            timeout=timeout,
            options=frozenset(options),
            assigning_authority=assigning_authority,
            verify_tls=str(ca_cert) if ca_cert else not insecure,
            client_cert=str(client_cert) if client_cert else None,
            client_key=str(client_key) if client_key else None,
            settings=settings,
            context=context,
        )
        listener = ConsoleListener(console, verbose=verbose)
        try:
            result = Runner(plan, config, listener=listener).run(suites=suites, cases=cases)
        except (KeyError, ValueError) as exc:
            listener.stop()
            raise click.UsageError(str(exc).strip("'\"")) from None
        listener.stop()
    console.print(summary_table(result))
    if junit is not None:
        write_junit(result, junit)
        console.print(f"JUnit XML: {junit}")
    if html_path is not None:
        write_html(result, html_path)
        console.print(f"HTML report: {html_path}")
    if evidence_dir is not None:
        written = write_evidence(result, evidence_dir)
        console.print(f"evidence: {len(written)} files in {evidence_dir}")
    sys.exit(0 if result.passed else 1)


if __name__ == "__main__":
    conformance()
