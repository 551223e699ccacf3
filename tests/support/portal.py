"""A stand-in for the affinity domain behind the patient portal (its ``PortalBackend``): grants
with codes, PINs, lock-out and shares in memory, unsigned assertions of the registry's shape,
exams with text reports, and synthetic DICOM studies written where ``consumer.fetch`` would
write them. The portal's unit tests drive its views against it; the browser tests use the real
system instead."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from consumer import iti43
from consumer.fetch import DocumentRef, Exam, FetchSummary, patient_directory
from consumer.self_service import NewShare, NotPermitted, PinAlreadySet, PinPending, SelfExam, SelfGrant, SessionEnded, Share
from consumer.token import ConsentToken, TokenLocked, TokenMistyped, TokenRefused
from tests.support.dicom import StudySpec, make_study
from xds.security.accesscode import AccessCodeError, check_access_code, damm_check_digit, format_access_code
from xds.security.saml import GrantScope, build_assertion
from xds.xml import to_bytes

REPOSITORY = "1.2.3.4.5.6"


def new_code(seed: int) -> str:
    body = f"{seed:07d}"[-7:]
    return body + damm_check_digit(body)


@dataclass
class FakeExam:
    study_uid: str
    title: str
    date: str
    modality: str
    released: bool = True
    release_time: datetime | None = None
    report: str | None = "FINDINGS: normal.\nIMPRESSION: no acute disease."
    body_part: str = "CHEST"
    series: int = 2
    slices: int = 3


@dataclass
class FakeGrant:
    grant_id: str
    code: str
    pin: str | None
    patient_id: str
    exams: list[FakeExam]
    expires: datetime
    label: str = ""
    parent: str | None = None
    revoked: bool = False
    failures: int = 0
    last_used: datetime | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def is_share(self) -> bool:
        return self.parent is not None


class FakeDomain:
    """The portal's backend, in memory. ``calls`` records what was asked (never the PINs)."""

    def __init__(self, *, token_lifetime: timedelta = timedelta(minutes=5)) -> None:
        self.grants: dict[str, FakeGrant] = {}
        self.token_lifetime = token_lifetime
        self.calls: list[str] = []
        self.addresses: list[str | None] = []
        self.fetched: list[str] = []
        self._seq = itertools.count(1000001)

    # -- set-up -----------------------------------------------------------------------------------
    def enrol(self, exams: Sequence[FakeExam], *, pin: str | None = "2468", patient_id: str = "P1^^^&1.2.3&ISO") -> FakeGrant:
        grant = FakeGrant(
            grant_id=str(uuid.uuid4()), code=new_code(next(self._seq)), pin=pin, patient_id=patient_id,
            exams=list(exams), expires=datetime.now(UTC) + timedelta(days=90),
        )  # fmt: skip
        self.grants[grant.grant_id] = grant
        return grant

    # -- tokens -----------------------------------------------------------------------------------
    def _token(self, grant: FakeGrant) -> ConsentToken:
        studies = frozenset(e.study_uid for e in self._visible(grant))
        scope = GrantScope(patient_id=grant.patient_id, study_instance_uids=studies, manifest_unique_ids=frozenset(f"{s}.9" for s in studies))
        element = build_assertion(
            issuer="urn:test", subject=grant.grant_id, audience="urn:test:aud", scope=scope,
            now=datetime.now(UTC), lifetime=self.token_lifetime,
        )  # fmt: skip
        return ConsentToken(assertion=element, raw=to_bytes(element))

    def _grant_of(self, token: ConsentToken) -> FakeGrant:
        subject = token.assertion.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID")
        grant = self.grants.get(subject.text if subject is not None else "")
        if grant is None or self._dead(grant):
            raise SessionEnded("not accepted", status=401)
        return grant

    def _dead(self, grant: FakeGrant) -> bool:
        parent = self.grants.get(grant.parent) if grant.parent else None
        return grant.revoked or grant.expires <= datetime.now(UTC) or (parent is not None and self._dead(parent))

    def _visible(self, grant: FakeGrant) -> list[FakeExam]:
        return [e for e in grant.exams if e.released]

    def sign_in(self, code: str, pin: str, *, client_address: str | None = None) -> ConsentToken:
        self.calls.append("sign_in")
        self.addresses.append(client_address)
        try:
            digits = check_access_code(code)
        except AccessCodeError as exc:
            raise TokenMistyped(str(exc)) from None
        grant = next((g for g in self.grants.values() if g.code == digits), None)
        if grant is None:
            raise TokenRefused("not accepted")
        if grant.failures >= 5:
            raise TokenLocked("locked", retry_after=120)
        if grant.pin is None:
            raise PinPending("no PIN yet")
        if pin != grant.pin or self._dead(grant):
            grant.failures += 1
            if grant.failures >= 5:
                raise TokenLocked("locked", retry_after=60)
            raise TokenRefused("not accepted")
        grant.failures = 0
        grant.last_used = datetime.now(UTC)
        return self._token(grant)

    def activate(self, code: str, pin: str, *, client_address: str | None = None) -> None:
        self.calls.append("activate")
        self.addresses.append(client_address)
        grant = next((g for g in self.grants.values() if g.code == check_access_code(code)), None)
        if grant is None:
            raise TokenRefused("not accepted")
        if grant.pin is not None:
            raise PinAlreadySet("already set", status=409)
        grant.pin = pin

    def refresh(self, token: ConsentToken) -> ConsentToken:
        self.calls.append("refresh")
        return self._token(self._grant_of(token))

    def grant(self, token: ConsentToken) -> SelfGrant:
        self.calls.append("grant")
        g = self._grant_of(token)
        return SelfGrant(
            grant_id=g.grant_id, patient_id=g.patient_id, is_share=g.is_share, label=g.label, created=g.created,
            expires=g.expires,
            exams=tuple(
                SelfExam(e.study_uid, f"{e.study_uid}.9", (f"{e.study_uid}.8",) if e.report else (), e.release_time,
                         e.released, e.title, e.date, (e.modality,))
                for e in g.exams
            ),
        )  # fmt: skip

    # -- shares -----------------------------------------------------------------------------------
    def _share(self, g: FakeGrant) -> Share:
        return Share(g.grant_id, g.label, tuple(e.study_uid for e in g.exams), g.created, g.expires, g.revoked, g.last_used)

    def shares(self, token: ConsentToken) -> list[Share]:
        self.calls.append("shares")
        owner = self._grant_of(token)
        if owner.is_share:
            raise NotPermitted("a share's token", status=403)
        return [self._share(g) for g in self.grants.values() if g.parent == owner.grant_id]

    def create_share(self, token: ConsentToken, *, label: str, study_uids: Sequence[str], expires: datetime) -> NewShare:
        self.calls.append("create_share")
        owner = self._grant_of(token)
        exams = [replace(e) for e in owner.exams if e.study_uid in study_uids]
        share = FakeGrant(
            grant_id=str(uuid.uuid4()), code=new_code(next(self._seq)), pin=f"{next(self._seq) % 1000000:06d}",
            patient_id=owner.patient_id, exams=exams, expires=min(expires, owner.expires), label=label,
            parent=owner.grant_id,
        )  # fmt: skip
        self.grants[share.grant_id] = share
        return NewShare(self._share(share), share.code, format_access_code(share.code), share.pin or "")

    def extend_share(self, token: ConsentToken, grant_id: str, *, expires: datetime) -> Share:
        self.calls.append("extend_share")
        owner = self._grant_of(token)
        share = self.grants[grant_id]
        assert share.parent == owner.grant_id
        share.expires = expires
        return self._share(share)

    def revoke_share(self, token: ConsentToken, grant_id: str) -> int:
        self.calls.append("revoke_share")
        owner = self._grant_of(token)
        share = self.grants[grant_id]
        assert share.parent == owner.grant_id
        share.revoked = True
        return 1

    # -- the consumer flow ------------------------------------------------------------------------
    def exams(self, token: ConsentToken, patient_id: str) -> list[Exam]:
        self.calls.append("exams")
        g = self._grant_of(token)
        out = []
        for e in self._visible(g):
            reports = (DocumentRef(f"{e.study_uid}.8", REPOSITORY, "text/plain", f"Radiology report: {e.title}"),) if e.report else ()
            manifest = DocumentRef(f"{e.study_uid}.9", REPOSITORY, "application/dicom", f"Imaging manifest: {e.title}")
            out.append(Exam(manifest, reports, "urn:uuid:ss", e.study_uid, "ACC-" + e.study_uid[-3:], e.date, (e.modality,), manifest.title))
        return out

    def documents(self, token: ConsentToken, documents: Sequence[DocumentRef], directory: Path) -> dict[str, Path]:
        self.calls.append("documents")
        g = self._grant_of(token)
        directory.mkdir(parents=True, exist_ok=True)
        texts = {f"{e.study_uid}.8": e.report for e in self._visible(g) if e.report}
        files = {}
        for ref in documents:
            if ref.unique_id in texts:
                path = directory / iti43.file_name(ref.unique_id, ref.mime_type)
                path.write_text(texts[ref.unique_id] or "", encoding="utf-8")
                files[ref.unique_id] = path
        return files

    def fetch_study(self, token: ConsentToken, patient_id: str, study_uid: str, out: Path) -> FetchSummary:
        self.calls.append("fetch_study")
        g = self._grant_of(token)
        exam = next(e for e in self._visible(g) if e.study_uid == study_uid)
        self.fetched.append(study_uid)
        spec = StudySpec(
            study_uid=study_uid, modalities=(exam.modality,) * exam.series, instances_per_series=exam.slices,
            rows=32, columns=32, body_part=exam.body_part,
        )  # fmt: skip
        datasets = make_study(spec)
        study = out / patient_directory(patient_id) / study_uid
        for ds in datasets:
            target = study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target, enforce_file_format=True)
        return FetchSummary((study_uid,), len(datasets), len(datasets), 0, 0, (), (), ())


def secret_free(text: str, *secrets: str) -> bool:
    """True when none of ``secrets`` (codes, PINs, and their base64) appears in ``text``."""
    for secret in secrets:
        if secret and (secret in text or base64.b64encode(secret.encode()).decode() in text):
            return False
    return True


def grey_dataset(values: np.ndarray, *, photometric: str = "MONOCHROME2", slope: float = 1.0, intercept: float = 0.0,
                 window: tuple[float, float] | None = None) -> Dataset:  # fmt: skip
    """A minimal single-frame image data set around ``values`` (uint16), for preview tests."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = str(slope), str(intercept)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = str(window[0]), str(window[1])
    ds.PixelData = values.astype(np.uint16).tobytes()
    return ds
