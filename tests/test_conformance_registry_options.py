"""The registry option suites (metadata-update, delete, restricted-update, on-demand) against a
fake registry that implements just enough of ITI-42/57/61/62/92 and ITI-18 to pass them, and
against variants of it that each break one rule: every such variant must fail the check that
rule is about. Without ``--option`` every case of these suites is not applicable."""

from __future__ import annotations

import copy
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from lxml import etree

from conformance_tests.model import RunResult, Verdict
from conformance_tests.mu import (
    ITI57_ACTION,
    ITI57_RESPONSE_ACTION,
    ITI61_ACTION,
    ITI61_RESPONSE_ACTION,
    ITI92_ACTION,
    ITI92_RESPONSE_ACTION,
    UPDATE_AVAILABILITY_STATUS,
)
from conformance_tests.patients import GivenPatients
from conformance_tests.plans import plan_for
from conformance_tests.rmd import ITI62_ACTION, ITI62_RESPONSE_ACTION
from conformance_tests.runner import RunConfig, Runner
from conformance_tests.schemas import SchemaSet
from xds.soap import response_envelope
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_WSA,
    Action,
    AssociationType,
    IdScheme,
    Node,
    ObjectType,
    ResponseStatus,
    Severity,
    Status,
)
from xds.xml import parse_xml, to_bytes

SCHEMAS = Path(__file__).resolve().parents[1].parent / "shared" / "schemas"
pytestmark = pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"shared schemas not found at {SCHEMAS}")

ENDPOINT = "http://fake.invalid/registry"
PATIENTS = tuple(f"OPT{n}^^^&1.3.6.1.4.1.21367.13.20.1000&ISO" for n in range(4))
SUITES = ("metadata-update", "delete", "restricted-update", "on-demand")
OPTIONS = frozenset({"mu", "rmd", "rmu", "on-demand"})
RIM = f"{{{NS_RIM}}}"
RESPONSE_ACTIONS = {
    Action.ITI42: Action.ITI42_RESPONSE,
    ITI57_ACTION: ITI57_RESPONSE_ACTION,
    ITI61_ACTION: ITI61_RESPONSE_ACTION,
    ITI62_ACTION: ITI62_RESPONSE_ACTION,
    ITI92_ACTION: ITI92_RESPONSE_ACTION,
}


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet.load(SCHEMAS)


# -- the fake registry ---------------------------------------------------------------------------
class Refused(Exception):
    def __init__(self, code: str, context: str) -> None:
        super().__init__(context)
        self.code = code


@dataclass(slots=True)
class Stored:
    """A registry object as the fake keeps it: its element (ids already resolved) and state."""

    element: etree._Element
    status: str = Status.APPROVED
    lid: str = ""
    version: int = 1

    @property
    def kind(self) -> str:
        return etree.QName(self.element).localname

    def ext(self, scheme: str) -> str | None:
        for child in self.element.iter(f"{RIM}ExternalIdentifier"):
            if child.get("identificationScheme") == scheme:
                return child.get("value")
        return None


def _slot(element: etree._Element, name: str) -> list[str]:
    path = "rim:Slot[@name=$n]/rim:ValueList/rim:Value"
    return [v.text or "" for v in element.xpath(path, namespaces={"rim": NS_RIM}, n=name)]


def _new_uuid() -> str:
    return f"urn:uuid:{uuidlib.uuid4()}"


@dataclass(slots=True)
class FakeRegistry:
    """Implements the option transactions well enough for the suites, unless told to break one
    rule (``breaks``): see :data:`BREAKS`."""

    breaks: frozenset[str] = frozenset()
    objects: dict[str, Stored] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    #: The request bodies it received, as sent (before it resolved any id).
    bodies: list[etree._Element] = field(default_factory=list)

    # -- transport -------------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        envelope = parse_xml(request.read())
        message_id = envelope.findtext(f".//{{{NS_WSA}}}MessageID")
        action = (envelope.findtext(f".//{{{NS_WSA}}}Action") or "").strip()
        self.actions.append(action)
        body_in = envelope.find("{http://www.w3.org/2003/05/soap-envelope}Body")[0]  # type: ignore[index]
        self.bodies.append(copy.deepcopy(body_in))
        if action == Action.ITI18:
            body = self._query(body_in)
            reply = Action.ITI18_RESPONSE
        else:
            body = self._change(action, body_in)
            reply = RESPONSE_ACTIONS[action]
        data = to_bytes(response_envelope(body, action=reply, relates_to=message_id), xml_declaration=True)
        return httpx.Response(200, content=data, headers={"content-type": "application/soap+xml; charset=UTF-8"})

    def _change(self, action: str, body: etree._Element) -> etree._Element:
        snapshot = {k: copy.copy(v) for k, v in self.objects.items()}
        try:
            if action == ITI62_ACTION:
                self._delete([ref.get("id") or "" for ref in body.iter(f"{RIM}ObjectRef")])
            else:
                self._submit(body, update=action in (ITI57_ACTION, ITI92_ACTION))
        except Refused as refusal:
            if "delete-partial" not in self.breaks:
                self.objects = snapshot  # all or nothing
            return _failure(refusal.code, str(refusal))
        return etree.Element(f"{RS}RegistryResponse", status=ResponseStatus.SUCCESS)

    # -- submissions (ITI-42, ITI-61, ITI-57, ITI-92) -------------------------------------------
    def _submit(self, body: etree._Element, *, update: bool) -> None:
        top = body.find(f"{RIM}RegistryObjectList")
        assert top is not None
        ids = {e.get("id") or "": e.get("id") or "" for e in top}
        for key in list(ids):
            if not key.startswith("urn:uuid:"):
                ids[key] = _new_uuid()
        for element in top.iter():
            for attr in ("id", "classifiedObject", "registryObject", "sourceObject", "targetObject"):
                value = element.get(attr)
                if value in ids:
                    element.set(attr, ids[value])
        members = {a.get("targetObject"): a for a in top if a.tag == f"{RIM}Association"}
        for element in top:
            local = etree.QName(element).localname
            if local == "ExtrinsicObject":
                self._document(element, members.get(element.get("id")), update=update)
            elif local == "RegistryPackage":
                self.objects[element.get("id") or ""] = Stored(element, lid=element.get("id") or "")
            elif local == "Classification" and element.get("classificationNode") == Node.SUBMISSION_SET:
                package = self.objects[element.get("classifiedObject") or ""].element
                package.insert(len(package.findall(f"{RIM}Slot")) + 1, copy.deepcopy(element))
        for element in top:
            if element.tag == f"{RIM}Association":
                self._association(element)

    def _document(self, element: etree._Element, member: etree._Element | None, *, update: bool) -> None:
        entry = element.get("id") or ""
        lid = element.get("lid")
        if not update:
            self.objects[entry] = Stored(element, lid=entry)
            return
        if lid is None or lid == entry:
            raise Refused("XDSMetadataUpdateError", "an update may not carry an initial version")
        versions = [o for o in self.objects.values() if o.kind == "ExtrinsicObject" and o.lid == lid]
        if not versions:
            code = "XDSRegistryMetadataError" if "wrong-code" in self.breaks else "XDSMetadataUpdateError"
            raise Refused(code, f"no DocumentEntry with logicalID {lid}")
        latest = max(versions, key=lambda o: o.version)
        previous = _slot(member, "PreviousVersion") if member is not None else []
        if previous != [str(latest.version)] and "ignore-version" not in self.breaks:
            raise Refused("XDSMetadataVersionError", f"PreviousVersion {previous}, latest {latest.version}")
        if "no-deprecate" not in self.breaks:
            latest.status = Status.DEPRECATED
        number = 1 if "no-version-bump" in self.breaks else latest.version + 1
        self.objects[entry] = Stored(element, lid=lid, version=number)

    def _association(self, element: etree._Element) -> None:
        kind = element.get("associationType")
        target = self.objects.get(element.get("targetObject") or "")
        if kind == UPDATE_AVAILABILITY_STATUS:
            if target is None:
                raise Refused("UnresolvedReferenceException", "unknown target")
            if _slot(element, "OriginalStatus") != [target.status]:
                raise Refused("XDSMetadataUpdateError", "OriginalStatus is not the current status")
            if "status-ignored" not in self.breaks:
                target.status = _slot(element, "NewStatus")[0]
            return  # the operation is not kept as an association
        if kind == AssociationType.IS_SNAPSHOT_OF and target is not None and "snapshot-deprecates" in self.breaks:
            target.status = Status.DEPRECATED
        self.objects[element.get("id") or ""] = Stored(element, lid=element.get("id") or "")

    # -- ITI-62 ----------------------------------------------------------------------------------
    def _delete(self, refs: list[str]) -> None:
        if "delete-noop" in self.breaks:
            return
        for ref in refs:
            if ref not in self.objects:
                raise Refused("UnresolvedReferenceException", f"{ref} is not in the registry")
            del self.objects[ref]
        if "delete-dangling" in self.breaks:
            return
        for obj in self.objects.values():
            ends = {obj.element.get("sourceObject"), obj.element.get("targetObject")}
            if obj.kind == "Association" and ends & set(refs):
                raise Refused("ReferencesExistException", f"association {obj.element.get('id')} refers to it")

    # -- ITI-18 ----------------------------------------------------------------------------------
    def _query(self, body: etree._Element) -> etree._Element:
        adhoc = body.find(f"{RIM}AdhocQuery")
        assert adhoc is not None
        params = {s.get("name"): _values(s) for s in adhoc.findall(f"{RIM}Slot")}
        name = _QUERY_NAMES[adhoc.get("id") or ""]
        found = getattr(self, f"_q_{name}")(params)
        response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", status=ResponseStatus.SUCCESS)
        objects = etree.SubElement(response, f"{RIM}RegistryObjectList")
        for obj in found:
            objects.append(_answer(obj))
        return response

    def _entries(self) -> list[Stored]:
        return [o for o in self.objects.values() if o.kind == "ExtrinsicObject"]

    def _latest(self, entries: Iterable[Stored]) -> list[Stored]:
        by_lid: dict[str, Stored] = {}
        for entry in entries:
            if entry.lid not in by_lid or entry.version >= by_lid[entry.lid].version:
                by_lid[entry.lid] = entry
        return list(by_lid.values())

    def _q_GetDocuments(self, params: dict[str, list[str]]) -> list[Stored]:
        if "$XDSDocumentEntryLogicalID" in params:
            assert params.get("$MetadataLevel") == ["2"]
            return [e for e in self._entries() if e.lid in params["$XDSDocumentEntryLogicalID"]]
        if "$XDSDocumentEntryUniqueId" in params:
            wanted = params["$XDSDocumentEntryUniqueId"]
            matching = [e for e in self._entries() if e.ext(IdScheme.DE_UNIQUE_ID) in wanted]
            return matching if "all-versions" in self.breaks else self._latest(matching)
        return [e for e in self._entries() if e.element.get("id") in params["$XDSDocumentEntryEntryUUID"]]

    def _q_FindDocuments(self, params: dict[str, list[str]]) -> list[Stored]:
        types = params.get("$XDSDocumentEntryType") or (
            list(ObjectType.DOCUMENT_ENTRY_TYPES)
            if "on-demand-default" in self.breaks
            else [ObjectType.STABLE_DOCUMENT_ENTRY]
        )
        return [
            e for e in self._latest(self._entries())
            if e.ext(IdScheme.DE_PATIENT_ID) in params["$XDSDocumentEntryPatientId"]
            and e.status in params["$XDSDocumentEntryStatus"] and e.element.get("objectType") in types
        ]  # fmt: skip

    def _links(self, ids: list[str]) -> list[Stored]:
        return [
            o for o in self.objects.values()
            if o.kind == "Association" and ({o.element.get("sourceObject"), o.element.get("targetObject")} & set(ids))
        ]  # fmt: skip

    def _q_GetAssociations(self, params: dict[str, list[str]]) -> list[Stored]:
        return self._links(params["$uuid"])

    def _q_GetSubmissionSets(self, params: dict[str, list[str]]) -> list[Stored]:
        links = [a for a in self._links(params["$uuid"]) if a.element.get("targetObject") in params["$uuid"]]
        sets = [self.objects[a.element.get("sourceObject") or ""] for a in links]
        return [s for s in sets if s.kind == "RegistryPackage"] + links

    def _q_GetSubmissionSetAndContents(self, params: dict[str, list[str]]) -> list[Stored]:
        sets = [o for o in self.objects.values() if o.kind == "RegistryPackage"
                and o.ext(IdScheme.SS_UNIQUE_ID) in params["$XDSSubmissionSetUniqueId"]]  # fmt: skip
        if not sets:
            return []
        links = [a for a in self._links([sets[0].element.get("id") or ""])
                 if a.element.get("sourceObject") == sets[0].element.get("id")]  # fmt: skip
        members = [self.objects[a.element.get("targetObject") or ""] for a in links]
        return sets + [m for m in members if m.kind == "ExtrinsicObject"] + links


RS = f"{{{NS_RS}}}"
_QUERY_NAMES = {
    "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4": "GetDocuments",
    "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d": "FindDocuments",
    "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155": "GetAssociations",
    "urn:uuid:51224314-5390-4169-9b91-b1980040715a": "GetSubmissionSets",
    "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83": "GetSubmissionSetAndContents",
}
#: One broken rule each; the suites must notice every one.
BREAKS = (
    "no-deprecate", "ignore-version", "wrong-code", "no-version-bump", "status-ignored", "delete-noop",
    "delete-dangling", "delete-partial", "on-demand-default", "snapshot-deprecates", "all-versions",
)  # fmt: skip


def _values(slot: etree._Element) -> list[str]:
    items: list[str] = []
    for value in slot.iter(f"{RIM}Value"):
        text = (value.text or "").strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        items += [item.strip().strip("'") for item in text.split(",") if item.strip()]
    return items


def _answer(obj: Stored) -> etree._Element:
    """The object as a LeafClass answer: status, lid and VersionInfo set (ebRIM 3.0 order)."""
    element = copy.deepcopy(obj.element)
    element.set("status", obj.status)
    if obj.kind == "Association":
        return element
    element.set("lid", obj.lid)
    position = len(element.findall(f"{RIM}Slot")) + len(element.findall(f"{RIM}Name")) + len(
        element.findall(f"{RIM}Description")
    )
    version = etree.Element(f"{RIM}VersionInfo", versionName=str(obj.version))
    element.insert(position, version)
    return element


def _failure(code: str, context: str) -> etree._Element:
    response = etree.Element(f"{RS}RegistryResponse", status=ResponseStatus.FAILURE)
    errors = etree.SubElement(response, f"{RS}RegistryErrorList", highestSeverity=Severity.ERROR)
    etree.SubElement(errors, f"{RS}RegistryError", errorCode=code, codeContext=context, severity=Severity.ERROR)
    return response


# -- running -------------------------------------------------------------------------------------
def _run(
    schemas: SchemaSet, peer: FakeRegistry, *, options: frozenset[str] = OPTIONS, suites: tuple[str, ...] = SUITES
) -> RunResult:
    config = RunConfig(
        endpoint=ENDPOINT, schemas=schemas, patients=GivenPatients(PATIENTS), timeout=5, options=options
    )
    runner = Runner(plan_for("registry"), config, http_transport=httpx.MockTransport(peer), sleep=lambda _: None)
    return runner.run(suites=suites)


def _verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.case.id: r.verdict for r in result.cases}


def _failed_checks(result: RunResult, case_id: str) -> set[str]:
    case = next(r for r in result.cases if r.case.id == case_id)
    return {c.name for s in case.steps for c in s.failed_checks}


def test_every_option_case_passes_against_a_registry_that_implements_them(schemas: SchemaSet) -> None:
    peer = FakeRegistry()
    result = _run(schemas, peer)
    failures = {r.case.id: r.summary() for r in result.cases if r.verdict is not Verdict.PASSED}
    assert failures == {}
    ran = {r.case.id for r in result.cases}
    assert {"mu-update", "mu-status", "mu-version-error", "mu-unknown-lid", "mu-initial-version"} <= ran
    assert {"rmd-delete-document", "rmd-delete-submission", "rmd-references-exist", "rmd-unresolved",
            "rmd-atomic", "rmu-update", "od-register", "od-snapshot"} <= ran  # fmt: skip
    # Each option's own transaction went over the wire, and every request was schema-valid.
    assert {ITI57_ACTION, ITI61_ACTION, ITI62_ACTION, ITI92_ACTION} <= set(peer.actions)
    assert [problem for body in peer.bodies for problem in schemas.validate(body)] == []


def test_without_the_options_every_case_is_not_applicable_and_nothing_is_sent(schemas: SchemaSet) -> None:
    peer = FakeRegistry()
    result = _run(schemas, peer, options=frozenset())
    option_cases = [r for r in result.cases if r.case.option]
    assert len(option_cases) == 13
    assert all(r.verdict is Verdict.NOT_APPLICABLE for r in option_cases)
    assert {r.message for r in option_cases if r.case.option == "mu"} == {
        "not applicable: option 'mu' not declared (--option mu)"
    }
    assert result.passed  # n/a cases do not count against a run, nor for it
    assert peer.actions == []


def test_declaring_one_option_runs_only_its_suite(schemas: SchemaSet) -> None:
    result = _run(schemas, FakeRegistry(), options=frozenset({"rmd"}))
    verdicts = _verdicts(result)
    assert {v for k, v in verdicts.items() if k.startswith("rmd-")} == {Verdict.PASSED}
    assert {v for k, v in verdicts.items() if k.startswith(("mu-", "rmu-", "od-"))} == {Verdict.NOT_APPLICABLE}


@pytest.mark.parametrize(
    ("broken", "case_id", "checks"),
    [
        ("no-deprecate", "mu-update", {"versions and statuses"}),
        ("no-deprecate", "rmu-update", {"versions and statuses"}),
        ("no-version-bump", "mu-update", {"version"}),
        ("no-version-bump", "rmu-update", {"version"}),
        ("ignore-version", "mu-version-error", {"status", "error list", "error XDSMetadataVersionError"}),
        ("wrong-code", "mu-unknown-lid", {"error XDSMetadataUpdateError"}),
        ("status-ignored", "mu-status", {"d1 availabilityStatus"}),
        ("delete-noop", "rmd-delete-document", {"DocumentEntry count"}),
        ("delete-noop", "rmd-references-exist", {"status", "error ReferencesExistException"}),
        ("delete-dangling", "rmd-references-exist", {"status", "error ReferencesExistException"}),
        ("delete-partial", "rmd-atomic", {"DocumentEntry count", "SubmissionSet count"}),
        ("on-demand-default", "od-register", {"no On-Demand entry"}),
        ("snapshot-deprecates", "od-snapshot", {"od availabilityStatus"}),
        ("all-versions", "mu-update", {"only the current version"}),
    ],
)
def test_a_registry_that_breaks_one_rule_fails_that_check(
    schemas: SchemaSet, broken: str, case_id: str, checks: set[str]
) -> None:
    assert broken in BREAKS
    result = _run(schemas, FakeRegistry(breaks=frozenset({broken})))
    verdicts = _verdicts(result)
    assert verdicts[case_id] is Verdict.FAILED
    assert checks <= _failed_checks(result, case_id)
    assert not result.passed


def test_all_versions_at_metadata_level_1_with_two_approved_fails_the_current_version_check(
    schemas: SchemaSet,
) -> None:
    peer = FakeRegistry(breaks=frozenset({"all-versions", "no-deprecate"}))
    result = _run(schemas, peer, suites=("metadata-update",))
    assert _verdicts(result)["mu-update"] is Verdict.FAILED
    assert {"one Approved version"} <= _failed_checks(result, "mu-update")


def test_every_broken_variant_fails_some_case(schemas: SchemaSet) -> None:
    for broken in BREAKS:
        result = _run(schemas, FakeRegistry(breaks=frozenset({broken})))
        assert not result.passed, broken
