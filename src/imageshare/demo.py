"""``xds demo``: seed a running ``xds up`` and print how to use what it shared.

The seeding itself is the Edge Server's (:mod:`imaging_source.demo`: C-STORE, ORU over MLLP,
enrolment, share jobs); this command only points it at the actors ``xds up`` runs with the same
flags, and prints the access code, the PIN and the exact consumer command.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

__all__ = ["demo_command"]


@click.command("demo")
@click.option("--host", default="127.0.0.1", help="Address `xds up` listens on")
@click.option("--port", default=8010, type=int, help="HTTP port of `xds up`")
@click.option("--data-dir", default="data", type=click.Path(path_type=Path), help="The data directory of `xds up`")
@click.option("--dicom-port", default=11112, type=int, help="The Edge Server's DICOM Storage SCP port")
@click.option("--ris-port", default=2576, type=int, help="The Edge Server's HL7 RIS feed port")
@click.option("--mllp-port", default=2575, type=int, help="The registry's ITI-8 feed port (the demo patient is registered there); 0: skip")
@click.option("--pin-stdin", is_flag=True, help="Read the demo patient's PIN from standard input [default: a random 6-digit PIN]")
@click.option("--out", default="demo-images", type=click.Path(path_type=Path), help="The directory the printed consumer command writes to")
@click.option("--timeout", default=300.0, type=float, help="Seconds to wait for each step")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (code and PIN included)")
def demo_command(
    host: str, port: int, data_dir: Path, dicom_port: int, ris_port: int, mllp_port: int, pin_stdin: bool, out: Path,
    timeout: float, as_json: bool,
) -> None:  # fmt: skip
    """Seed a running `xds up` with a demo patient: a chest CT and a brain MR with reports, enrolled
    (access code + PIN) and shared with immediate release; prints the code, the PIN and the
    consumer command that fetches the images with them."""
    from imageshare.up import UpSettings, source_settings
    from imaging_source.demo import DemoError, demo_staff, seed

    import logging

    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    up = UpSettings(host=host, port=port, data_dir=data_dir, dicom_port=dicom_port, ris_port=ris_port, mllp_port=mllp_port)
    settings = source_settings(up)
    pin = sys.stdin.readline().strip() if pin_stdin else None
    say = (lambda _line: None) if as_json else (lambda line: click.echo(line, err=True))
    try:
        result = seed(
            settings, dicom_host=up.local, ris_host=up.local, registry_feed=(up.local, mllp_port) if mllp_port else None,
            pin=pin, timeout=timeout, say=say,
        )  # fmt: skip
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    staff_user, staff_password = demo_staff(settings)
    sheet = data_dir / "demo" / "code-sheet.pdf"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(sheet, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(result.code_sheet)
    base = up.base_url
    command = [
        "xds", "consumer", "fetch",
        "--registry", f"{base}/registry", "--repository", f"{base}/repository",
        "--source", f"{settings.source_id}={base}/imaging-source",
        "--code", result.access_code_display, "--pin-stdin", "--out", str(out),
    ]  # fmt: skip
    fetch = f"echo {shlex.quote(result.pin)} | {shlex.join(command)}"
    listing = f"echo {shlex.quote(result.pin)} | " + shlex.join(
        ["xds", "consumer", "list", "--registry", f"{base}/registry", "--code", result.access_code_display, "--pin-stdin"]
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "patient_id": result.patient_id,
                    "affinity_patient_id": result.affinity_patient_id,
                    "grant_id": result.grant_id,
                    "access_code": result.access_code,
                    "access_code_display": result.access_code_display,
                    "pin": result.pin,
                    "expires": result.expires.isoformat(),
                    "studies": [
                        {"study_uid": e.study_uid, "accession": e.accession, "description": e.description,
                         "modality": e.modality, "instances": e.instances}
                        for e in result.exams
                    ],  # fmt: skip
                    "source_id": settings.source_id,
                    "registry": f"{base}/registry",
                    "repository": f"{base}/repository",
                    "imaging_source": f"{base}/imaging-source",
                    "portal": f"{base}/portal/",
                    "console": f"{base}/console/",
                    "staff_user": staff_user,
                    "staff_password": staff_password,
                    "code_sheet": str(sheet),
                    "consumer_command": fetch,
                },
                indent=2,
            )
        )
        return
    click.echo(f"Demo patient {result.patient_id} ({result.affinity_patient_id}), enrolled until {result.expires:%Y-%m-%d}:")
    for exam in result.exams:
        click.echo(f"  {exam.accession}  {exam.description} ({exam.instances} images), shared and released now")
    click.echo(f"access code: {result.access_code_display}")
    click.echo(f"PIN:         {result.pin}")
    click.echo(f"code sheet:  {sheet}")
    click.echo("")
    click.echo("See what the code and PIN unlock:")
    click.echo(f"  {listing}")
    click.echo("Fetch every image, verified against the manifests:")
    click.echo(f"  {fetch}")
    click.echo(f"Patient portal: {base}/portal/  (sign in with the access code and PIN above)")
    click.echo(f"Staff console:  {base}/console/  (user {staff_user}, password {staff_password})")
