"""The Edge Server's settings (see :mod:`xds.settings` for how they are layered).

Section ``[source]`` of the TOML file, environment variables ``XDS_SOURCE_*``, CLI flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: repositoryUniqueId of an Imaging Document Source nobody configured: an OID under the UUID arc
#: (2.25), fixed so a default installation keeps its identity. It is the Retrieve Location UID
#: (0040,E011) of every KOS this source writes (RAD TF-3 §4.68.4.1.2.1), so configure your own.
DEFAULT_SOURCE_ID: Final = "2.25.137206585838203498017460411624932916307"
DEFAULT_AE_TITLE: Final = "XDSEDGE"


def sqlite_url(data_dir: Path, name: str = "imaging.sqlite") -> str:
    """The embedded default index database under a data directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / name).resolve()}"


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """Everything ``xds source serve`` can be told; section ``[source]``, env ``XDS_SOURCE_*``."""

    host: str = "127.0.0.1"
    port: int = 8030
    # The C-STORE SCP (PACS pushes, C-MOVE destinations, modalities). 0 disables it.
    dicom_host: str = "127.0.0.1"
    dicom_port: int = 11112
    # Our Application Entity title: the C-STORE SCP's and the C-FIND/C-MOVE SCU's (PS3.8 §9.3.2).
    ae_title: str = DEFAULT_AE_TITLE
    # The Imaging Document Source's repositoryUniqueId (RAD TF-3 §4.69.4.1.2: RAD-69 requests name it).
    source_id: str = DEFAULT_SOURCE_ID
    # Retrieve AE Title (0008,0054) written into KOS references; empty = ae_title.
    retrieve_ae_title: str = ""
    # Where instances live; empty = <data_dir>/dicom.
    store: Path | None = None
    # SQLAlchemy URL of the index; empty = SQLite (WAL) at <data_dir>/imaging.sqlite.
    db: str | None = None
    data_dir: Path = Path("data")
    # Directory of the ebRS/IHE schemas, served at ?xsd= and referenced by the WSDL.
    schemas: Path | None = None
    # fsync each received instance before answering C-STORE Success (durable, slower).
    fsync: bool = True
    # Seconds without a new instance after which a C-MOVE retrieval stops waiting (RSNA: 600).
    retrieve_inactivity_timeout: float = 600.0
    # Seconds to wait for an association, a DIMSE response, and network activity of a PACS.
    pacs_timeout: float = 30.0
    # Largest RAD-69 request held in memory.
    max_envelope_bytes: int = 16 << 20
    log_level: str = "info"

    def database_url(self) -> str:
        return self.db or sqlite_url(self.data_dir)

    def store_dir(self) -> Path:
        return self.store if self.store is not None else self.data_dir / "dicom"

    def retrieve_ae(self) -> str:
        return self.retrieve_ae_title or self.ae_title
