"""The registry's relational schema, shaped for the ITI-18 stored queries.

Every attribute a stored query filters on is an indexed column or a row of a narrow side table
(multi-valued codes, authors, reference ids), so a FindDocuments is an index range on
``(patient_id, status)`` plus correlated EXISTS probes, never a scan of XML. Each object also keeps
its ebRIM encoding (``xml``) as the registry will return it; the registry rewrites that encoding
whenever it changes an object (deprecation, folder update time, patient merge), so answering a
query never re-derives metadata.

Alembic owns the schema (``registry/migrations``); this module is the application's view of it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only aliases INTEGER PRIMARY KEY to the rowid, so BigInteger keys use INTEGER there.
PK = BigInteger().with_variant(Integer(), "sqlite")

UUID_LEN = 64
OID_LEN = 128
CODE_LEN = 256
DTM_LEN = 14 + 8  # DTM digits, with room for an offset a source may send

patient = Table(
    "patient",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("patient_id", String(256), nullable=False, unique=True),
    Column("family_name", String(256)),
    Column("given_name", String(256)),
    Column("birth_date", String(DTM_LEN)),
    Column("sex", String(8)),
    # ITI-8 A40: the surviving patient ID of a merged (subsumed) one.
    Column("merged_into", String(256), index=True),
    Column("updated", String(32), nullable=False),
)

document_entry = Table(
    "document_entry",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("entry_uuid", String(UUID_LEN), nullable=False, unique=True),
    Column("unique_id", String(OID_LEN + 20), nullable=False, index=True),
    Column("patient_id", String(256), nullable=False),
    Column("status", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("mime_type", String(128), nullable=False),
    Column("hash", String(40)),
    Column("size", BigInteger),
    Column("repository_unique_id", String(OID_LEN)),
    Column("creation_time", String(DTM_LEN)),
    Column("service_start_time", String(DTM_LEN)),
    Column("service_stop_time", String(DTM_LEN)),
    Column("class_code", String(CODE_LEN)),
    Column("class_scheme", String(CODE_LEN)),
    Column("type_code", String(CODE_LEN)),
    Column("type_scheme", String(CODE_LEN)),
    Column("format_code", String(CODE_LEN)),
    Column("format_scheme", String(CODE_LEN)),
    Column("hcft_code", String(CODE_LEN)),
    Column("hcft_scheme", String(CODE_LEN)),
    Column("practice_code", String(CODE_LEN)),
    Column("practice_scheme", String(CODE_LEN)),
    Column("xml", LargeBinary, nullable=False),
    Index("ix_document_entry_patient", "patient_id", "status", "object_type"),
)

# Multi-valued DocumentEntry codes: confidentialityCode and eventCodeList (kind 'conf' / 'event').
document_entry_code = Table(
    "document_entry_code",
    metadata,
    Column("entry_id", PK, ForeignKey("document_entry.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("code", String(CODE_LEN), nullable=False),
    Column("scheme", String(CODE_LEN), nullable=False),
    Index("ix_document_entry_code_entry", "entry_id", "kind"),
)

document_entry_author = Table(
    "document_entry_author",
    metadata,
    Column("entry_id", PK, ForeignKey("document_entry.id"), nullable=False, index=True),
    Column("person", String(512), nullable=False),
)

document_entry_reference = Table(
    "document_entry_reference",
    metadata,
    Column("entry_id", PK, ForeignKey("document_entry.id"), nullable=False, index=True),
    Column("value", String(512), nullable=False),
)

submission_set = Table(
    "submission_set",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("entry_uuid", String(UUID_LEN), nullable=False, unique=True),
    Column("unique_id", String(OID_LEN), nullable=False, unique=True),
    Column("source_id", String(OID_LEN)),
    Column("patient_id", String(256), nullable=False),
    Column("status", String(64), nullable=False),
    Column("submission_time", String(DTM_LEN)),
    Column("content_type_code", String(CODE_LEN)),
    Column("content_type_scheme", String(CODE_LEN)),
    Column("xml", LargeBinary, nullable=False),
    Index("ix_submission_set_patient", "patient_id", "status"),
)

submission_set_author = Table(
    "submission_set_author",
    metadata,
    Column("set_id", PK, ForeignKey("submission_set.id"), nullable=False, index=True),
    Column("person", String(512), nullable=False),
)

folder = Table(
    "folder",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("entry_uuid", String(UUID_LEN), nullable=False, unique=True),
    Column("unique_id", String(OID_LEN), nullable=False, unique=True),
    Column("patient_id", String(256), nullable=False),
    Column("status", String(64), nullable=False),
    Column("last_update_time", String(DTM_LEN), nullable=False),
    Column("xml", LargeBinary, nullable=False),
    Index("ix_folder_patient", "patient_id", "status"),
)

folder_code = Table(
    "folder_code",
    metadata,
    Column("folder_id", PK, ForeignKey("folder.id"), nullable=False, index=True),
    Column("code", String(CODE_LEN), nullable=False),
    Column("scheme", String(CODE_LEN), nullable=False),
)

association = Table(
    "association",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("entry_uuid", String(UUID_LEN), nullable=False, unique=True),
    Column("association_type", String(128), nullable=False),
    Column("source_uuid", String(UUID_LEN), nullable=False, index=True),
    Column("target_uuid", String(UUID_LEN), nullable=False, index=True),
    Column("status", String(64), nullable=False),
    Column("xml", LargeBinary, nullable=False),
)

# Free-form registry settings and bookkeeping (e.g. the schema's own notes); small.
registry_setting = Table(
    "registry_setting",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)
