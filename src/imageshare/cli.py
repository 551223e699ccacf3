"""The ``xds`` command: every actor's commands plugged into one group (the composition root)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from conformance_tests.cli import conformance
from imageshare.demo import demo_command
from consumer.cli import consumer
from imaging_source.cli import source
from registry.cli import registry
from repository.cli import repository


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="imageshare-xds", prog_name="xds")
def main() -> None:
    """Patient-controlled image sharing on IHE XDS-I.b: registry, repository, imaging source and
    consumer, each a SOAP 1.2 service."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


main.add_command(registry)
main.add_command(repository)
main.add_command(source)
main.add_command(consumer)
main.add_command(conformance)


@main.command()
@click.option("--host", default="127.0.0.1", help="Address to listen on")
@click.option("--port", default=8010, type=int, help="HTTP port of every actor")
@click.option("--data-dir", default="data", type=click.Path(path_type=Path), help="Where databases and stores live")
@click.option("--codes", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Affinity-domain code set (codes.xml)")
@click.option("--mllp-port", default=2575, type=int, help="ITI-8 MLLP port; 0 disables the feed")
@click.option("--repository-id", default=None, help="The repository's repositoryUniqueId [default: a fixed 2.25 OID]")
@click.option("--dicom-port", default=11112, type=int, help="The Edge Server's DICOM Storage SCP port; 0 disables it")
@click.option("--ris-port", default=2576, type=int, help="The Edge Server's HL7 report/order feed (MLLP); 0 disables it")
@click.option(
    "--policy", "access_policy", type=click.Choice(["consent", "open"]), default="consent",
    help="consent: the patient's code and PIN gate query and retrieval; open: plain XDS.b (a Connectathon harness)",
)  # fmt: skip
def up(
    host: str, port: int, data_dir: Path, codes: Path | None, mllp_port: int, repository_id: str | None,
    dicom_port: int, ris_port: int, access_policy: str,
) -> None:  # fmt: skip
    """Run every actor in one process on SQLite and local files: registry, repository and
    Edge Server (Imaging Document Source) on one HTTP port."""
    from imageshare.up import UpSettings, run_up

    run_up(
        UpSettings(
            host=host, port=port, data_dir=data_dir, codes=codes, mllp_port=mllp_port, repository_id=repository_id,
            dicom_port=dicom_port, ris_port=ris_port, access_policy=access_policy,
        )
    )  # fmt: skip


main.add_command(demo_command)


if __name__ == "__main__":
    main()
