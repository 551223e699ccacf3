"""Tables of the consent grants (DESIGN §4), declared on the registry's one MetaData so Alembic
and the tests see them with the rest of the schema (migration 0002 creates them).

* ``consent_grant``: one row per grant (an enrolment, or a narrower share made from one), with
  an optional label (who a share is for) and the PIN-pending flag (migration 0003);
* ``consent_grant_exam``: the exams a grant shares; a share's rows name only the study, whose
  manifest, reports and release time come from its parent;
* ``consent_throttle``: failure counters of client addresses and of codes no live grant has;
* ``consent_audit``: one append-only row per presentation and per change of a grant.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text, false, text

from registry.store.schema import OID_LEN, PK, metadata

GRANT_ID_LEN = 36
LABEL_LEN = 120

consent_grant = Table(
    "consent_grant",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("grant_id", String(GRANT_ID_LEN), nullable=False, unique=True),
    # HMAC-SHA256 (hex) of the access code under the registry secret: never the code itself.
    Column("code_digest", String(64), nullable=False),
    Column("pin_hash", String(200), nullable=False),
    Column("patient_id", String(256), nullable=False, index=True),
    Column("parent_id", PK, ForeignKey("consent_grant.id"), index=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    # Who a share is for (e.g. "Dr. Lee, cardiology"), shown to the patient; optional.
    Column("label", String(LABEL_LEN)),
    # True until the patient chooses the first PIN (pin_hash then holds the hash of a random secret).
    Column("pin_pending", Boolean, nullable=False, default=False, server_default=false()),
    # A code is unique among grants that are not revoked (checked on issue, kept by this index).
    Index(
        "ux_consent_grant_live_code",
        "code_digest",
        unique=True,
        sqlite_where=text("NOT revoked"),
        postgresql_where=text("NOT revoked"),
    ),
)

consent_grant_exam = Table(
    "consent_grant_exam",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("grant_pk", PK, ForeignKey("consent_grant.id"), nullable=False),
    Column("study_uid", String(OID_LEN), nullable=False),
    Column("manifest_unique_id", String(OID_LEN)),
    # Space-separated uniqueIds (OIDs contain no spaces).
    Column("report_unique_ids", Text, nullable=False, default=""),
    Column("release_time", DateTime(timezone=True)),
    Index("ux_consent_grant_exam", "grant_pk", "study_uid", unique=True),
)

consent_throttle = Table(
    "consent_throttle",
    metadata,
    # "addr:<client address>" or "code:<keyed digest of a code>" (never the code itself).
    Column("key", String(160), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("updated", DateTime(timezone=True), nullable=False),
)

consent_audit = Table(
    "consent_audit",
    metadata,
    Column("id", PK, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("grant_id", String(GRANT_ID_LEN), index=True),
    Column("client_address", String(64)),
    Column("action", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", String(256)),
)
