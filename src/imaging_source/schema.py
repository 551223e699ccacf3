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
    Text,
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


# -- share jobs (imaging_source.jobs; migration i0003) -------------------------------------------
# One row per shared exam; its state history in imaging_job_event (rsna-image-share §2.4: each
# state change is a row, the latest is the job's state); patients whose future exams are sent.
job = Table(
    "imaging_job",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),  # (0010,0020), the MRN
    Column("issuer", String(64), nullable=False, default=""),  # (0010,0021)
    Column("study_uid", _UID, nullable=False, index=True),  # (0020,000D)
    Column("accession", String(64), nullable=False, default=""),  # (0008,0050)
    Column("policy", String(16), nullable=False),  # release.ReleasePolicy
    Column("state", String(24), nullable=False, index=True),  # jobs.JobState
    Column("state_since", Float, nullable=False),
    Column("created", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=True, index=True),
    Column("lease_until", Float, nullable=True),
    Column("release_time", Float, nullable=True),
    Column("last_error", String(2000), nullable=False, default=""),
    Column("autosend", Boolean, nullable=False, default=False),
    # Identities kept across attempts so a resubmission is identical (ITI TF-2b §3.42.4.1.3.5).
    Column("submission_uid", String(64), nullable=True),
    Column("kos_uid", _UID, nullable=True),
    Column("report_uid", String(64), nullable=True),
    Column("report_mime", String(64), nullable=True),
    Column("submitted", Float, nullable=True),
)

job_event = Table(
    "imaging_job_event",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("job_ref", _ID, ForeignKey("imaging_job.id"), nullable=False, index=True),
    Column("state", String(24), nullable=False),
    Column("at", Float, nullable=False),
    Column("detail", String(2000), nullable=False, default=""),
)

autosend = Table(
    "imaging_autosend",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False, default=""),
    Column("policy", String(16), nullable=False),
    Column("since", Float, nullable=False),
    UniqueConstraint("patient_id", "issuer", name="uq_imaging_autosend_patient_id_issuer"),
)


# -- RIS reports and orders (imaging_source.reports; migration i0002) ----------------------------
# rsna-image-share §2.5: the RIS sends report status and text (ORU^R01) and orders (ORM^O01);
# everything is keyed by accession number so reports may arrive before or after the images.
# ``imaging_report`` holds the newest version per accession (``version`` counts accepted
# versions), ``imaging_report_version`` every version received (the audit history, text included).
report = Table(
    "imaging_report",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("accession", String(64), nullable=False, unique=True),  # OBR-3 / OBR-18
    Column("patient_id", String(64), nullable=False),  # PID-3.1
    Column("issuer", String(64), nullable=False, default=""),  # PID-3.4
    Column("status", String(8), nullable=False),  # OBR-25 Result Status
    Column("final", Boolean, nullable=False, default=False),
    Column("text", Text, nullable=False, default=""),  # OBX-5 lines
    Column("status_time", Float, nullable=True),  # OBR-22
    Column("received", Float, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("message_id", String(64), nullable=False, default=""),  # MSH-10 of the accepted version
    Column("study_uid", _UID, nullable=False, default=""),
    Column("procedure_code", String(64), nullable=False, default=""),  # OBR-4.1
    Column("procedure_scheme", String(64), nullable=False, default=""),  # OBR-4.3
    Column("procedure_meaning", String(200), nullable=False, default=""),  # OBR-4.2
)
Index("ix_imaging_report_patient_id", report.c.patient_id, report.c.issuer)

report_version = Table(
    "imaging_report_version",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("accession", String(64), nullable=False, index=True),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False, default=""),
    Column("status", String(8), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("status_time", Float, nullable=True),
    Column("received", Float, nullable=False),
    Column("message_id", String(64), nullable=False, default=""),
    # False when an older status time arrived after a newer one (kept for audit, not applied).
    Column("applied", Boolean, nullable=False, default=True),
)

order = Table(
    "imaging_order",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("accession", String(64), nullable=False, unique=True),  # OBR-3 / OBR-18
    Column("placer_number", String(64), nullable=False, default=""),  # ORC-2 / OBR-2
    Column("patient_id", String(64), nullable=False),  # PID-3.1
    Column("issuer", String(64), nullable=False, default=""),  # PID-3.4
    Column("procedure_code", String(64), nullable=False, default=""),  # OBR-4.1
    Column("procedure_scheme", String(64), nullable=False, default=""),  # OBR-4.3
    Column("procedure_meaning", String(200), nullable=False, default=""),  # OBR-4.2
    Column("order_control", String(2), nullable=False),  # ORC-1 of the last applied message
    Column("order_status", String(2), nullable=False, default=""),  # ORC-5
    Column("canceled", Boolean, nullable=False, default=False),
    Column("transaction_time", Float, nullable=True),  # ORC-9 (or MSH-7)
    Column("scheduled_time", Float, nullable=True),  # OBR-36 / ORC-7 start
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)
Index("ix_imaging_order_patient_id", order.c.patient_id, order.c.issuer)

# -- consent grants (DESIGN §4; imaging_source.enrol) -----------------------------------------
# The registry holds the grant (code hash, PIN hash, exams); the Edge Server keeps only which
# grant is whose, never the code or the PIN.
grant = Table(
    "imaging_grant",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),  # (0010,0020), the department MRN
    Column("issuer", String(64), nullable=False, default=""),  # (0010,0021)
    Column("grant_id", String(64), nullable=False, unique=True),  # the registry's grant
    Column("affinity_patient_id", String(256), nullable=False),  # the grant's patientId (CX)
    Column("expires", Float, nullable=True),
    Column("created", Float, nullable=False),
    UniqueConstraint("patient_id", "issuer", name="uq_imaging_grant_patient_id_issuer"),
)

# Done share jobs whose exam is not yet on the patient's grant (the grant API was down).
grant_pending = Table(
    "imaging_grant_pending",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("job_ref", _ID, ForeignKey("imaging_job.id"), nullable=False, unique=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=True),  # None: given up (the registry refused)
    Column("last_error", String(2000), nullable=False, default=""),
    Column("created", Float, nullable=False),
)

# -- the staff console (imaging_source.web; migration i0005) -----------------------------------
# Staff who sign in to the console: the password only as an scrypt hash with its own salt and
# cost parameters ("scrypt$N$r$p$salt$key"), a role, and the failed sign-ins that lock an account.
staff_user = Table(
    "imaging_staff_user",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),  # web.staff.StaffRole: user | admin
    Column("created", Float, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", Float, nullable=True),
    Column("last_login", Float, nullable=True),
    Column("password_changed", Float, nullable=False),
)

# What staff did in the console (who, when, what, which patient): the console's audit trail.
# Never a PIN or an access code in ``detail``.
staff_action = Table(
    "imaging_staff_action",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("staff", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("patient_id", String(64), nullable=False, default=""),
    Column("issuer", String(64), nullable=False, default=""),
    Column("detail", String(2000), nullable=False, default=""),
)
Index("ix_imaging_staff_action_patient_id", staff_action.c.patient_id)
