"""A registry under test, driven in-process (the HTTP tests drive the same code over a socket)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from lxml import etree
from sqlalchemy import Engine

from registry.iti18 import RegistryStoredQuery
from registry.iti42 import DocumentRegistry
from registry.patients import Patient
from xds.errors import RegistryError
from xds.metadata.ebrim import decode_registry_object_list, encode_submit_objects_request
from xds.metadata.model import Submission
from xds.metadata.responses import parse_adhoc_query_response
from xds.query import build_adhoc_query
from xds.vocabulary import NS_RIM


@dataclass
class Clock:
    """An injectable clock that moves only when told to."""

    now: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class QueryAnswer:
    status: str
    errors: list[RegistryError]
    element: etree._Element | None

    @property
    def codes(self) -> list[str]:
        return [e.code_text for e in self.errors]

    def count(self, local_name: str) -> int:
        if self.element is None:
            return 0
        return len(self.element.findall(f"{{{NS_RIM}}}{local_name}"))

    def ids(self, local_name: str) -> list[str]:
        if self.element is None:
            return []
        return [e.get("id") for e in self.element.findall(f"{{{NS_RIM}}}{local_name}")]

    def submission(self) -> Submission:
        assert self.element is not None
        return decode_registry_object_list(self.element).submission


class RegistryUnderTest:
    def __init__(self, engine: Engine, *, codes: object | None = None, max_results: int = 5000, **options: object) -> None:
        self.clock = Clock()
        self.registry = DocumentRegistry(engine, codes=codes, clock=self.clock, **options)  # type: ignore[arg-type]
        self.queries = RegistryStoredQuery(engine, max_results=max_results)

    def feed(self, pid: str) -> str:
        self.registry.patients.add_or_update(Patient(patient_id=pid))
        return pid

    def submit(self, sub: Submission) -> list[RegistryError]:
        request = etree.fromstring(etree.tostring(encode_submit_objects_request(sub)))
        return self.registry.register(request)

    def ok(self, sub: Submission) -> None:
        errors = [e for e in self.submit(sub) if e.is_error]
        assert errors == [], errors

    def query(self, query_id: str, params: dict[str, object], *, return_type: str = "LeafClass") -> QueryAnswer:
        request = build_adhoc_query(query_id, params, return_type=return_type, validate=False)
        response = self.queries.respond(etree.fromstring(etree.tostring(request)))
        parsed = parse_adhoc_query_response(response)
        return QueryAnswer(parsed.status, list(parsed.errors), parsed.object_list)
