"""The Edge Server's settings (see :mod:`xds.settings` for how they are layered).

Section ``[source]`` of the TOML file, environment variables ``XDS_SOURCE_*``, CLI flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from xds import db
from xds.security.gate import check_access_policy, consent_audit_path
from xds.vocabulary import CONSENT_TOKEN_AUDIENCE

#: repositoryUniqueId of an Imaging Document Source nobody configured: an OID under the UUID arc
#: (2.25), fixed so a default installation keeps its identity. It is the Retrieve Location UID
#: (0040,E011) of every KOS this source writes (RAD TF-3 §4.68.4.1.2.1), so configure your own.
DEFAULT_SOURCE_ID: Final = "2.25.137206585838203498017460411624932916307"
DEFAULT_AE_TITLE: Final = "XDSEDGE"


def sqlite_url(data_dir: Path, name: str = "imaging.sqlite") -> str:
    """The embedded default index database under a data directory."""
    return db.sqlite_url(data_dir, name)


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
    # Refuse associations addressed to another AE title (A-ASSOCIATE-RJ reason 7, PS3.8 §9.3.4).
    check_called_ae: bool = True
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
    # -- sharing (RAD-68 jobs: imaging_source.jobs / worker / rad68 / submit) -----------------
    # The Document Repository's ITI-41/RAD-68 endpoint (repository.app.PATH on its default port).
    repository_url: str = "http://127.0.0.1:8020/repository"
    repository_timeout: float = 120.0
    # Hours between a final report and a routine release (RSNA delay_in_hrs, rsna-image-share §2.6).
    release_delay_hours: float = 72.0
    # Release policy of a share when none is given: routine, when-final or immediately.
    default_release: str = "routine"
    # Affinity-domain patient ID: CX.1 = patient_id_rule over {patient_id} and {issuer}, CX.4 this OID.
    affinity_domain_oid: str = "1.3.6.1.4.1.21367.13.20.1000"
    patient_id_rule: str = "{patient_id}"
    # OID of the hospital's MRN assigning authority (sourcePatientId); empty = the DICOM Issuer
    # of Patient ID when it is an OID.
    local_patient_id_oid: str = ""
    # Issuer OID of accession numbers whose images name none as an OID (referenceIdList, ITI
    # TF-3 Table 4.2.3.1.7-2); empty = such accessions are left out of the metadata.
    accession_issuer_oid: str = ""
    # Affinity-domain code set (codes.xml) the codes below are checked against; empty = unchecked.
    codes: Path | None = None
    class_code_images: str = "IMAGES^^1.3.6.1.4.1.19376.1.2.6.1"
    class_code_reports: str = "REPORTS^^1.3.6.1.4.1.19376.1.2.6.1"
    type_code_default: str = "18748-4^^2.16.840.1.113883.6.1"
    type_code_report: str = "11528-7^^2.16.840.1.113883.6.1"
    confidentiality_code: str = "N^^2.16.840.1.113883.5.25"
    healthcare_facility_type_code: str = "22232009^^2.16.840.1.113883.6.96"
    practice_setting_code: str = "309964003^^2.16.840.1.113883.6.96"
    content_type_code: str = "UNSPECIFIED-CONTENT-TYPE^^1.3.6.1.4.1.21367.2017.3"
    format_code_text: str = "urn:ihe:rad:TEXT^^1.3.6.1.4.1.19376.1.2.3"
    format_code_pdf: str = "urn:ihe:rad:PDF^^1.3.6.1.4.1.19376.1.2.3"
    author_institution: str = ""
    language_code: str = "en-US"
    # Send the report as PDF (else text/plain).
    report_pdf: bool = False
    # Retries: exponential back-off from retry_base_seconds, capped, then failed after max_attempts.
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    max_attempts: int = 10
    # How often a job waiting for its report looks again, and how often the runner wakes.
    report_poll_seconds: float = 300.0
    job_poll_seconds: float = 5.0
    # -- RIS feed (HL7 v2 ORU^R01 / ORM^O01 over MLLP: imaging_source.feed); port 0 disables it.
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 2576
    # -- consent (DESIGN §4) ---------------------------------------------------------------------
    # "open": any client retrieves anything; "consent": RAD-69 needs the registry's SAML assertion
    # in wsse:Security, WADO-URI in "Authorization: SAML <base64>", and only studies of its scope.
    access_policy: str = "open"
    # The registry's token-signing certificate (PEM; its GET /consent/certificate), for "consent".
    trusted_token_cert: Path | None = None
    # This source's name in the assertions' AudienceRestriction (the registry's token_audience).
    token_audience: str = CONSENT_TOKEN_AUDIENCE
    # -- enrolment and grant sync (DESIGN §4: imaging_source.enrol, grant_client) ----------------
    # The registry's grant API (registry.consent_http) and its bearer key; no key = no grant sync.
    grant_api_url: str = "http://127.0.0.1:8010/consent"
    grant_api_key: str | None = None
    # Where patients use their access code (printed on the code sheet).
    portal_url: str = "http://127.0.0.1:8040/"
    # DESIGN §4 "Abuse": the append-only audit log (JSON lines) of the consent gate; empty =
    # <data_dir>/audit/imaging-source-consent.jsonl when access_policy is "consent" (see audit_path()).
    audit_log: Path | None = None

    def __post_init__(self) -> None:
        check_access_policy(self.access_policy, trusted_token_cert=self.trusted_token_cert)

    def audit_path(self) -> Path | None:
        """Where the consent gate's audit goes (None under the open policy unless set)."""
        return consent_audit_path(self.access_policy, configured=self.audit_log, data_dir=self.data_dir, actor="imaging-source")

    def database_url(self) -> str:
        return self.db or sqlite_url(self.data_dir)

    def store_dir(self) -> Path:
        return self.store if self.store is not None else self.data_dir / "dicom"

    def retrieve_ae(self) -> str:
        return self.retrieve_ae_title or self.ae_title
