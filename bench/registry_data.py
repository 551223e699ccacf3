"""Realistic registry content for the benchmarks: code sets, identifiers, model builders and
ebRIM templates.

The codes come from the shared affinity domain (``../shared/affinity-domain/codes.xml``, the
same set the test factory draws from), so a registry started with ``--codes`` accepts every
submission built here. Three kinds of document make up an imaging-sharing registry: KOS imaging
manifests (with 1-2 modality event codes and two reference ids), imaging reports and
consultation notes.

For bulk loading, :class:`Template` encodes one object per structural variant with the
project's own codec, with placeholder tokens where values differ, and then fills the
placeholders by string substitution, so every stored ``xml`` is a real encoding at the cost of
a string format.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from xds.metadata.model import Association, Author, Code, DocumentEntry, Submission, SubmissionSet
from xds.vocabulary import AssociationType, ObjectType, ReferenceIdType, Status, SubmissionSetStatus

CODES_XML = Path(__file__).resolve().parents[2] / "shared" / "affinity-domain" / "codes.xml"

AFFINITY_OID = "1.3.6.1.4.1.21367.13.20.1000"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.110"
REPOSITORIES = ("1.3.6.1.4.1.21367.13.40.216", "1.3.6.1.4.1.21367.13.40.217", "1.3.6.1.4.1.21367.13.40.218")
ACCESSION_AUTHORITY = "1.3.6.1.4.1.21367.13.70.3"

# -- code sets (all present in the affinity domain's codes.xml) ---------------------------------

CONF_N = Code("N", "2.16.840.1.113883.5.25", "normal")
CONF_R = Code("R", "2.16.840.1.113883.5.25", "restricted")
CONF_V = Code("V", "2.16.840.1.113883.5.25", "very restricted")
HCFT_CODES = (
    Code("22232009", "2.16.840.1.113883.6.96", "Hospital"),
    Code("35971002", "2.16.840.1.113883.6.96", "Ambulatory care site"),
    Code("225728007", "2.16.840.1.113883.6.96", "Accident and Emergency department"),
)
PRACTICE_CODES = (
    Code("309964003", "2.16.840.1.113883.6.96", "Radiology department (environment)"),
    Code("309915006", "2.16.840.1.113883.6.96", "Cardiology department (environment)"),
    Code("309927009", "2.16.840.1.113883.6.96", "General medical department (environment)"),
    Code("Practice-A", "1.3.6.1.4.1.21367.2017.3", "Radiology-Old"),
)
MODALITIES = tuple(
    Code(code, "1.2.840.10008.2.16.4", display)
    for code, display in (
        ("CT", "Computed Tomography"),
        ("MR", "Magnetic Resonance"),
        ("CR", "Computed Radiography"),
        ("DX", "Digital Radiography"),
        ("US", "Ultrasound"),
        ("MG", "Mammography"),
        ("PT", "Positron emission tomography"),
        ("NM", "Nuclear Medicine"),
        ("XA", "X-Ray Angiography"),
    )
)
CONTENT_TYPE = Code("394747008", "2.16.840.1.113883.6.96", "Health Authority")


@dataclass(frozen=True, slots=True)
class DocKind:
    """A kind of document: its fixed codes, MIME type and structure."""

    name: str
    weight: float
    class_code: Code
    type_code: Code
    format_code: Code
    mime_type: str
    event_counts: tuple[int, ...]  # possible numbers of event codes
    reference_ids: int  # accession (+ study instance UID for manifests)
    titles: tuple[str, ...]


KINDS = (
    DocKind(
        "manifest", 0.60,
        Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images"),
        Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document"),
        "application/dicom", (1, 2), 2,
        ("CT Chest", "MR Brain", "XR Thorax", "US Abdomen", "CT Abdomen Pelvis", "Mammography screening"),
    ),
    DocKind(
        "imaging-report", 0.25,
        Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
        Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        Code("urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013", "1.3.6.1.4.1.19376.1.2.3", "RAD XDS-I"),
        "text/xml", (0,), 1,
        ("Radiology report", "CT report", "MR report"),
    ),
    DocKind(
        "consultation", 0.15,
        Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
        Code("11488-4", "2.16.840.1.113883.6.1", "Consultation Note"),
        Code("urn:ihe:pcc:xds-ms:2007", "1.3.6.1.4.1.19376.1.2.3", "PCC XDS-MS"),
        "text/xml", (0,), 1,
        ("Consultation note", "Referral letter"),
    ),
)

FAMILY = ("Smith", "Jones", "Miller", "Garcia", "Martin", "Bernard", "Rossi", "Novak", "Schmidt", "Dubois",
          "Kowalski", "Nielsen", "Silva", "Murphy", "Weber", "Moreau", "Romano", "Horvat", "Jansen", "Costa")
GIVEN = ("Anna", "Marc", "Julia", "Peter", "Lea", "Tomas", "Sara", "Luca", "Eva", "Jonas", "Mia", "Noah")
INSTITUTIONS = tuple(
    f"{name}^^^^^^^^^1.3.6.1.4.1.21367.13.60.{i}"
    for i, name in enumerate(("City Hospital", "University Clinic", "Imaging Center North", "Regional Hospital",
                              "Heart Institute", "Children's Hospital", "Community Clinic", "Radiology Partners"), 1)
)
ROLES = ("Attending", "Radiologist", "Referring")


def authors_pool(size: int = 200) -> list[str]:
    """Author persons (XCN) of the domain: a fixed, seeded pool."""
    rng = random.Random(4242)
    return [
        f"{1000 + i}^{rng.choice(FAMILY)}^{rng.choice(GIVEN)}^^^Dr^^^&1.3.6.1.4.1.21367.13.50&ISO"
        for i in range(size)
    ]


def check_codes_in_affinity_domain(path: Path = CODES_XML) -> list[str]:
    """Codes used here that the affinity domain does not define (empty = all good)."""
    if not path.is_file():
        return [f"{path} not found; codes not checked"]
    text = path.read_text()
    used: set[Code] = {CONF_N, CONF_R, CONF_V, CONTENT_TYPE, *HCFT_CODES, *PRACTICE_CODES, *MODALITIES}
    for kind in KINDS:
        used |= {kind.class_code, kind.type_code, kind.format_code}
    missing = []
    for c in sorted(used, key=lambda c: (c.scheme, c.code)):
        if not re.search(rf'code="{re.escape(c.code)}"[^>]*codingScheme="{re.escape(c.scheme)}"', text):
            missing.append(f"{c.code}^^{c.scheme}")
    return missing


# -- identifiers ---------------------------------------------------------------------------------


class Ids:
    """Identifiers of one load: random per run, sequential inside it (cheap and collision-free).

    UUIDs are ``<run prefix>-<tag>-<counter>``: version 4 layout, the variant nibble in ``tag``.
    Sequential keys also keep the unique indexes append-only while loading.
    """

    DE, SS, HAS_MEMBER, RPLC = 0x8000, 0x8001, 0x8002, 0x8003
    DE_CHILD, SS_CHILD = 0x9000, 0xA000

    def __init__(self, rng: random.Random) -> None:
        r = rng.getrandbits(60)
        self.prefix = f"urn:uuid:{r >> 28 & 0xFFFFFFFF:08x}-{r >> 12 & 0xFFFF:04x}-4{r & 0xFFF:03x}-"
        self.oid_root = f"1.3.6.1.4.1.21367.13.90.{rng.randrange(1, 10**9)}"

    def uuid(self, tag: int, n: int) -> str:
        return f"{self.prefix}{tag:04x}-{n:012x}"

    def uid(self, kind: int, n: int) -> str:
        """An OID for uniqueIds: root . kind . n (kind 1 = DocumentEntry, 2 = SubmissionSet)."""
        return f"{self.oid_root}.{kind}.{n}"


def patient_id(n: int, *, prefix: str = "IS") -> str:
    """Affinity-domain patient ID (CX with CX.1 and CX.4 only)."""
    return f"{prefix}{n:08d}^^^&{AFFINITY_OID}&ISO"


# -- model builders ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """The structure of a DocumentEntry encoding: kind, number of conf and event codes."""

    kind: DocKind
    confs: int
    events: int


def variants() -> list[Variant]:
    return [Variant(k, c, e) for k in KINDS for c in (1, 2) for e in k.event_counts]


def document_entry(variant: Variant, v: Mapping[str, object]) -> DocumentEntry:
    """A registered DocumentEntry (lid, version and status set) from field values ``v``.

    ``v`` holds strings, or :class:`Code` objects for HCFT, PRACTICE, CONF0.., EVENT0.. .
    """
    kind = variant.kind
    refs = [str(v["ACC"])] + ([str(v["STUDY"])] if kind.reference_ids > 1 else [])
    de = DocumentEntry(
        id=str(v["ID"]),
        lid=str(v["ID"]),
        version="1",
        status=str(v["STATUS"]),
        object_type=ObjectType.STABLE_DOCUMENT_ENTRY,
        title=str(v["TITLE"]),
        mime_type=kind.mime_type,
        unique_id=str(v["UID"]),
        patient_id=str(v["PID"]),
        class_code=kind.class_code,
        type_code=kind.type_code,
        format_code=kind.format_code,
        confidentiality_codes=[v[f"CONF{i}"] for i in range(variant.confs)],  # type: ignore[misc]
        event_codes=[v[f"EVENT{i}"] for i in range(variant.events)],  # type: ignore[misc]
        healthcare_facility_type_code=v["HCFT"],  # type: ignore[arg-type]
        practice_setting_code=v["PRACTICE"],  # type: ignore[arg-type]
        authors=[Author(person=str(v["AUTHOR"]), institutions=[str(v["INST"])], roles=[str(v["ROLE"])])],
        creation_time=str(v["CTIME"]),
        service_start_time=str(v["SSTART"]),
        service_stop_time=str(v["SSTOP"]),
        hash=str(v["HASH"]),
        size=str(v["SIZE"]),
        repository_unique_id=str(v["REPO"]),
        language_code="en-US",
        source_patient_id=str(v["SRCPID"]),
        source_patient_info=[f"PID-3|{v['SRCPID']}", f"PID-5|{v['NAME']}", f"PID-7|{v['BIRTH']}", f"PID-8|{v['SEX']}"],
        reference_ids=refs,
    )
    return de


def submission_set(v: Mapping[str, object]) -> SubmissionSet:
    """A registered SubmissionSet from field values ``v``."""
    return SubmissionSet(
        id=str(v["ID"]),
        lid=str(v["ID"]),
        version="1",
        status=Status.APPROVED,
        title=str(v["TITLE"]),
        unique_id=str(v["UID"]),
        source_id=SOURCE_ID,
        patient_id=str(v["PID"]),
        submission_time=str(v["STIME"]),
        content_type_code=CONTENT_TYPE,
        authors=[Author(person=str(v["AUTHOR"]), institutions=[str(v["INST"])])],
    )


def association(v: Mapping[str, object], *, kind: str) -> Association:
    """A registered HasMember (SS -> DE, SubmissionSetStatus Original) or RPLC association."""
    return Association(
        id=str(v["ID"]),
        lid=str(v["ID"]),
        version="1",
        status=Status.APPROVED,
        association_type=kind,
        source=str(v["SRC"]),
        target=str(v["TGT"]),
        submission_set_status=SubmissionSetStatus.ORIGINAL if kind == AssociationType.HAS_MEMBER else None,
    )


def accession(n: int) -> str:
    """A referenceIdList value: an accession number (CXi, ITI TF-3 §4.2.3.2.28)."""
    return f"ACC{n:09d}^^^&{ACCESSION_AUTHORITY}&ISO^{ReferenceIdType.ACCESSION}"


def study_uid(root: str, n: int) -> str:
    return f"{root}.3.{n}^^^^{ReferenceIdType.STUDY_INSTANCE_UID}"


def single_document_submission(pid: str, rng: random.Random, *, ids: Ids, n: int, authors: Sequence[str]) -> Submission:
    """An ITI-42 submission of one new manifest: SS + DE + HasMember, symbolic ids, fresh uniqueIds."""
    kind = KINDS[0]
    values: dict[str, object] = {
        "ID": "Document01", "STATUS": Status.APPROVED, "TITLE": rng.choice(kind.titles), "UID": ids.uid(1, n),
        "PID": pid, "CONF0": CONF_N, "EVENT0": rng.choice(MODALITIES), "HCFT": rng.choice(HCFT_CODES),
        "PRACTICE": PRACTICE_CODES[0], "AUTHOR": rng.choice(authors), "INST": rng.choice(INSTITUTIONS),
        "ROLE": ROLES[1], "CTIME": "20250301120000", "SSTART": "20250301110000", "SSTOP": "20250301113000",
        "HASH": f"{rng.getrandbits(160):040x}", "SIZE": str(rng.randrange(2_000, 200_000)),
        "REPO": REPOSITORIES[0], "SRCPID": f"L{n}^^^&1.3.6.1.4.1.21367.13.30.1&ISO", "NAME": "DOE^JANE^^^",
        "BIRTH": "19700101", "SEX": "F", "ACC": accession(n), "STUDY": study_uid(ids.oid_root, n),
    }
    de = document_entry(Variant(kind, 1, 1), values)
    de.lid = de.version = de.status = None
    ss = submission_set({"ID": "SubmissionSet01", "TITLE": "Imaging submission", "UID": ids.uid(2, n), "PID": pid,
                         "STIME": "20250301120500", "AUTHOR": values["AUTHOR"], "INST": values["INST"]})
    ss.lid = ss.version = ss.status = None
    hm = association({"ID": "Association01", "SRC": ss.id, "TGT": de.id}, kind=AssociationType.HAS_MEMBER)
    hm.lid = hm.version = hm.status = None
    return Submission(submission_sets=[ss], document_entries=[de], associations=[hm])


# -- templates ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"Qz([A-Z0-9]+)zQ")
_CHILD_ID = re.compile(r' id="([^"]+)"')


def token(name: str) -> str:
    return f"Qz{name}zQ"


def code_tokens(name: str) -> Code:
    return Code(token(name + "C"), token(name + "S"), token(name + "D"))


class Template:
    """An encoded object with named holes, filled by ``%``-formatting with a mapping.

    Child ids the codec generated (Classification, ExternalIdentifier) become holes ``K0``,
    ``K1``, ... so that every stored object gets ids of its own.
    """

    def __init__(self, encoded: str) -> None:
        children: list[str] = []

        def child(match: re.Match[str]) -> str:
            if _TOKEN.fullmatch(match.group(1)):
                return match.group(0)
            children.append(match.group(1))
            return f' id="{token(f"K{len(children) - 1}")}"'

        text = _CHILD_ID.sub(child, encoded)
        # A generated child id referenced elsewhere in the encoding would be left stale.
        for old in children:
            if old in text:
                raise ValueError(f"generated id {old} is referenced inside the encoding")
        self.children = len(children)
        self.fields = sorted({m.group(1) for m in _TOKEN.finditer(text)})
        self.format = _TOKEN.sub(lambda m: f"%({m.group(1)})s", text.replace("%", "%%"))

    def render(self, values: Mapping[str, str]) -> bytes:
        """Fill the holes with ``values`` (already XML-escaped)."""
        return (self.format % values).encode("utf-8")


def xml_escape(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def code_values(name: str, code: Code) -> dict[str, str]:
    """The escaped hole values of a coded attribute ``name``."""
    return {name + "C": xml_escape(code.code), name + "S": xml_escape(code.scheme), name + "D": xml_escape(code.display)}
