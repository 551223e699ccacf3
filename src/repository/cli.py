"""``xds repository ...``: serve the Document Repository, settle interrupted submissions."""

from __future__ import annotations

from pathlib import Path

import click

from repository.config import RepositorySettings
from xds.settings import SettingsError, load_settings


def _settings(config: Path | None, **flags: object) -> RepositorySettings:
    try:
        return load_settings(RepositorySettings, section="repository", config_file=config, overrides=flags)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _common(function):  # type: ignore[no-untyped-def]
    options = [
        click.option("--registry", help="The Document Registry's SOAP endpoint [default: http://127.0.0.1:8010/registry]"),
        click.option("--repository-id", help="This repository's repositoryUniqueId, an OID [default: a fixed 2.25 OID; set your own]"),
        click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Document store directory [default: <data-dir>/documents]"),
        click.option("--db", help="SQLAlchemy URL of the index [default: SQLite in the data directory]"),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Data directory [default: ./data]"),
        click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TOML file with a [repository] section"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group()
def repository() -> None:
    """Document Repository: ITI-41 / RAD-68 Provide and Register, ITI-43 Retrieve Document Set."""


@repository.command()
@_common
@click.option("--host", help="Address to listen on [default: 127.0.0.1]")
@click.option("--port", type=int, help="HTTP port [default: 8020]")
@click.option("--schemas", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Directory of the ebRS/IHE XSDs served with the WSDL")
@click.option("--registry-timeout", type=float, help="Seconds per connect/read/write to the registry [default: 60]")
@click.option("--max-body-bytes", type=int, help="Largest ITI-41 request [default: 8 GiB]")
@click.option("--workers", type=int, help="Worker processes [default: 1]")
@click.option("--access-policy", type=click.Choice(["open", "consent"]), help="open: plain XDS.b; consent: ITI-43 needs the registry's SAML assertion [default: open]")
@click.option("--trusted-token-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The registry's token-signing certificate, PEM (its /consent/certificate)")
@click.option("--token-audience", help="This repository's audience in the assertions [default: the registry's default]")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Serve HTTPS with this PEM certificate (with --tls-key)")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The PEM private key of --tls-cert")
@click.option("--tls-client-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Require client certificates signed by this CA (mutual TLS)")
def serve(config: Path | None, **flags: object) -> None:
    """Run the Document Repository (HTTP SOAP endpoint)."""
    from repository.app import serve_repository

    serve_repository(_settings(config, **flags))


@repository.command()
@_common
def reconcile(config: Path | None, **flags: object) -> None:
    """Settle the documents of interrupted submissions with the registry, once, and report.

    A running repository does this by itself at start and periodically; this command is for a
    stopped one (e.g. before a backup)."""
    import anyio

    from repository.app import timing_for
    from repository.db import make_engine, upgrade
    from repository.reconcile import Reconciler
    from repository.service import DocumentRepository
    from repository.store import DocumentStore
    from xds.http.client import AsyncSoapClient

    settings = _settings(config, **flags)
    engine = make_engine(settings.database_url())
    upgrade(engine)
    store = DocumentStore(settings.store_dir(), engine)
    timing = timing_for(settings)

    async def run() -> None:
        async with AsyncSoapClient(settings.registry, timeout=settings.registry_timeout, headers=settings.registry_headers()) as client:
            repo = DocumentRepository(store, repository_id=settings.repository_id, client=client, timing=timing)
            reconciler = Reconciler(
                store, repo.lookup_registry, repository_id=settings.repository_id, lease_seconds=timing.lease, retry_after=0,
                settle_after=timing.call_deadline,
            )
            report = await reconciler.run_once()
        counts = store.counts()
        click.echo(
            f"committed {report.committed}, discarded {report.discarded}, deferred {report.deferred}; "
            f"index: {counts.get('committed', 0)} stored, {counts.get('pending', 0)} pending"
        )

    try:
        anyio.run(run)
    finally:
        engine.dispose()
