"""The Edge Server's DICOM index (created by the Alembic migrations, never by ``create_all``).

The hierarchy is the DICOM information model (PS3.3 §A.1.2; PS3.4 §C.6.1.1): ``patient`` ->
``study`` -> ``series`` -> ``instance``, each keyed by its identifier, each row pointing to its
parent. A patient's *jacket* (every exam with its study data) is therefore one join of
``patient`` and ``study``; instance counts and modalities come from one grouped query.
``pacs_node`` holds the PACS the Edge Server queries and moves from.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_ID = BigInteger().with_variant(Integer(), "sqlite")
# PS3.5 §6.2: UI is at most 64 characters; LO 64; SH 16; PN 64 per component group (3 groups).
_UID = String(64)
_PN = String(200)

patient = Table(
    "imaging_patient",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),  # (0010,0020)
    Column("issuer", String(64), nullable=False, default=""),  # (0010,0021), '' when absent
    Column("name", _PN, nullable=False, default=""),  # (0010,0010)
    Column("birth_date", String(8), nullable=False, default=""),  # (0010,0030)
    Column("sex", String(16), nullable=False, default=""),  # (0010,0040)
    Column("updated", Float, nullable=False),
    UniqueConstraint("patient_id", "issuer", name="uq_imaging_patient_patient_id_issuer"),
)

study = Table(
    "imaging_study",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("patient_ref", _ID, ForeignKey("imaging_patient.id"), nullable=False, index=True),
    Column("study_uid", _UID, nullable=False, unique=True),  # (0020,000D)
    Column("accession", String(64), nullable=False, default=""),  # (0008,0050)
    Column("accession_issuer", String(64), nullable=False, default=""),  # (0008,0051)>(0040,0031)
    Column("study_id", String(16), nullable=False, default=""),  # (0020,0010)
    Column("study_date", String(8), nullable=False, default=""),  # (0008,0020)
    Column("study_time", String(16), nullable=False, default=""),  # (0008,0030)
    Column("description", String(64), nullable=False, default=""),  # (0008,1030)
    Column("referring_physician", _PN, nullable=False, default=""),  # (0008,0090)
    # First item of the Procedure Code Sequence (0008,1032): XDS-I typeCode (RAD TF-3 4.68.4.1.2.3.2).
    Column("procedure_code", String(64), nullable=False, default=""),
    Column("procedure_scheme", String(64), nullable=False, default=""),
    Column("procedure_meaning", String(64), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),  # last instance received
)
Index("ix_imaging_study_accession", study.c.accession)

series = Table(
    "imaging_series",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("study_ref", _ID, ForeignKey("imaging_study.id"), nullable=False, index=True),
    Column("series_uid", _UID, nullable=False, unique=True),  # (0020,000E)
    Column("modality", String(16), nullable=False, default=""),  # (0008,0060)
    Column("series_number", Integer, nullable=True),  # (0020,0011)
    Column("description", String(64), nullable=False, default=""),  # (0008,103E)
    Column("body_part", String(16), nullable=False, default=""),  # (0018,0015)
)

instance = Table(
    "imaging_instance",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("series_ref", _ID, ForeignKey("imaging_series.id"), nullable=False, index=True),
    Column("sop_uid", _UID, nullable=False, unique=True),  # (0008,0018)
    Column("sop_class_uid", _UID, nullable=False),  # (0008,0016)
    Column("transfer_syntax", _UID, nullable=False),  # (0002,0010) of the stored file
    Column("instance_number", Integer, nullable=True),  # (0020,0013)
    Column("path", String(512), nullable=False),  # relative to the store root
    Column("size", BigInteger, nullable=False),
    Column("received", Float, nullable=False),
)

pacs_node = Table(
    "imaging_pacs_node",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("ae_title", String(16), nullable=False),  # PS3.5 §6.2 AE: 16 characters
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created", Float, nullable=False),
)
