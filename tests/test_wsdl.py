"""Generated WSDLs: structure, agreement with the IHE WSDLs, schema serving, and zeep end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from xds.errors import ErrorCode
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_WSA,
    NS_WSAW,
    NS_WSDL,
    NS_WSDL_SOAP12,
    NS_XSD,
    Action,
    ResponseStatus,
    Severity,
)
from xds.wsdl import (
    DOCUMENT_REGISTRY,
    DOCUMENT_REPOSITORY,
    IMAGING_DOCUMENT_SOURCE,
    WsdlDefinition,
    WsdlProvider,
    render_wsdl,
)
from xds.xml import parse_xml

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SCHEMAS = SHARED / "schemas"
W = f"{{{NS_WSDL}}}"
S12 = f"{{{NS_WSDL_SOAP12}}}"
DEFINITIONS = [DOCUMENT_REGISTRY, DOCUMENT_REPOSITORY, IMAGING_DOCUMENT_SOURCE]
IHE_WSDL_FILES = {
    "DocumentRegistry": "XDS.b_DocumentRegistry.wsdl",
    "DocumentRepository": "XDS.b_DocumentRepository.wsdl",
    "ImagingDocumentSource": "XDS-I.b_ImagingDocumentSource.wsdl",
}


def needs_schemas() -> None:
    if not SCHEMAS.is_dir():
        pytest.skip(f"shared schemas not found at {SCHEMAS}")


def operations(wsdl: etree._Element) -> dict[str, tuple[str, str, str, str]]:
    """operation name -> (input element, input action, output element, output action)."""
    messages = {}
    for message in wsdl.iter(f"{W}message"):
        part = message.find(f"{W}part")
        prefix, _, local = part.get("element").partition(":")
        messages[message.get("name")] = f"{{{part.nsmap[prefix]}}}{local}"
    result = {}
    for op in wsdl.find(f"{W}portType").iter(f"{W}operation"):
        inp, out = op.find(f"{W}input"), op.find(f"{W}output")
        result[op.get("name")] = (
            messages[inp.get("message").partition(":")[2]],
            inp.get(f"{{{NS_WSAW}}}Action"),
            messages[out.get("message").partition(":")[2]],
            out.get(f"{{{NS_WSAW}}}Action"),
        )
    return result


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_wsdl_structure(definition: WsdlDefinition) -> None:
    wsdl = parse_xml(render_wsdl(definition, address="https://host:8443/xds/svc"))
    assert wsdl.get("targetNamespace") == definition.target_namespace
    service = wsdl.find(f"{W}service")
    assert service.get("name") == definition.service
    assert service.find(f"{W}port/{S12}address").get("location") == "https://host:8443/xds/svc"
    binding = wsdl.find(f"{W}binding")
    soap_binding = binding.find(f"{S12}binding")
    assert soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    assert binding.find(f"{{{NS_WSAW}}}UsingAddressing") is not None
    for op in binding.iter(f"{W}operation"):
        assert op.find(f"{W}input/{S12}body").get("use") == "literal"
        assert op.find(f"{W}output/{S12}body").get("use") == "literal"
    assert set(operations(wsdl)) == {op.name for op in definition.operations}


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_wsdl_agrees_with_the_ihe_wsdl(definition: WsdlDefinition) -> None:
    # Two sources for the same facts: the IHE implementation material (read, not copied) and ours.
    needs_schemas()
    ihe = etree.parse(str(SCHEMAS / "wsdl" / IHE_WSDL_FILES[definition.name])).getroot()
    ours = parse_xml(render_wsdl(definition, address="http://x/"))
    assert operations(ours) == operations(ihe)
    assert ours.find(f"{W}service").get("name") == ihe.find(f"{W}service").get("name")
    assert ours.find(f"{W}portType").get("name") == ihe.find(f"{W}portType").get("name")


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_message_elements_exist_in_the_standard_schemas(definition: WsdlDefinition) -> None:
    needs_schemas()
    schema = etree.XMLSchema(
        etree.parse(str(SCHEMAS / "schema" / "IHE" / "XDSI.b_ImagingDocumentSource.xsd"))
    )
    for op in definition.operations:
        for element in (op.input_element, op.output_element):
            # An empty instance of a declared global element fails on content, not on being unknown.
            schema.validate(etree.Element(element))
            messages = " ".join(str(e.message) for e in schema.error_log)
            assert "No matching global declaration" not in messages, element


def test_default_schema_locations_are_public() -> None:
    wsdl = parse_xml(render_wsdl(DOCUMENT_REPOSITORY, address="http://x/"))
    locations = {i.get("namespace"): i.get("schemaLocation") for i in wsdl.iter(f"{{{NS_XSD}}}import")}
    assert locations[NS_QUERY] == "http://docs.oasis-open.org/regrep/v3.0/schema/query.xsd"
    assert locations["urn:ihe:iti:xds-b:2007"].endswith("/IHE/XDS.b_DocumentRepository.xsd")
    assert all(loc.startswith(("http://", "https://")) for loc in locations.values())


def test_schema_locations_point_at_the_endpoint_when_a_directory_is_set() -> None:
    needs_schemas()
    provider = WsdlProvider(DOCUMENT_REGISTRY, schema_dir=SCHEMAS)
    wsdl = parse_xml(provider.wsdl("http://h:1/registry"))
    locations = [i.get("schemaLocation") for i in wsdl.iter(f"{{{NS_XSD}}}import")]
    assert "http://h:1/registry?xsd=schema/ebRS/query.xsd" in locations
    assert all(loc.startswith("http://h:1/registry?xsd=schema/") for loc in locations)


def test_served_schema_has_its_references_rewritten() -> None:
    needs_schemas()
    provider = WsdlProvider(IMAGING_DOCUMENT_SOURCE, schema_dir=SCHEMAS)
    data = provider.schema("schema/IHE/XDSI.b_ImagingDocumentSource.xsd", endpoint_url="http://h/ids")
    assert data is not None
    refs = {i.get("namespace"): i.get("schemaLocation") for i in parse_xml(data).iter(f"{{{NS_XSD}}}import")}
    assert refs["urn:ihe:iti:xds-b:2007"] == "http://h/ids?xsd=schema/IHE/XDS.b_DocumentRepository.xsd"
    assert refs[NS_RIM] == "http://h/ids?xsd=schema/ebRS/rim.xsd"
    rim = provider.schema("schema/ebRS/rim.xsd", endpoint_url="http://h/ids")
    assert rim is not None and b"http://h/ids?xsd=schema/xml.xsd" in rim


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../schemas/schema/xml.xsd",
        "schema/../../schemas/schema/xml.xsd",
        "schema/./xml.xsd",
        "/etc/passwd",
        "schema//xml.xsd",
        "schema\\xml.xsd",
        "file:///etc/passwd",
        "README.md",
        "wsdl/XDS.b_DocumentRegistry.wsdl",
        "schema/missing.xsd",
        "schema/xml.xsd\x00.txt",
    ],
)
def test_schema_requests_outside_the_directory_or_not_xsd_are_refused(name: str) -> None:
    needs_schemas()
    assert WsdlProvider(DOCUMENT_REGISTRY, schema_dir=SCHEMAS).schema(name, endpoint_url="http://h/") is None


def test_symlink_leaving_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.xsd"
    outside.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>')
    root = tmp_path / "schemas"
    root.mkdir()
    (root / "link.xsd").symlink_to(outside)
    (root / "inside.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>')
    provider = WsdlProvider(DOCUMENT_REGISTRY, schema_dir=root)
    assert provider.schema("link.xsd", endpoint_url="http://h/") is None
    assert provider.schema("inside.xsd", endpoint_url="http://h/") is not None


def test_without_a_schema_directory_nothing_is_served() -> None:
    assert WsdlProvider(DOCUMENT_REGISTRY).schema("schema/xml.xsd", endpoint_url="http://h/") is None


# -- zeep, unmodified, against a real server -------------------------------------------------------------
seen_requests: list[SoapRequest] = []


async def stored_query(request: SoapRequest) -> SoapResponse:
    seen_requests.append(request)
    # An answer zeep has to parse through the schemas: a Failure with one RegistryError whose
    # codeContext echoes the query id it received.
    query_id = request.body.find(f"{{{NS_RIM}}}AdhocQuery").get("id")
    response = etree.Element(f"{{{NS_QUERY}}}AdhocQueryResponse", nsmap={"query": NS_QUERY, "rs": NS_RS})
    response.set("status", ResponseStatus.FAILURE)
    errors = etree.SubElement(response, f"{{{NS_RS}}}RegistryErrorList", highestSeverity=Severity.ERROR)
    etree.SubElement(
        errors,
        f"{{{NS_RS}}}RegistryError",
        errorCode=ErrorCode.STORED_QUERY_MISSING_PARAM.value,
        codeContext=f"query {query_id} needs $XDSDocumentEntryPatientId",
        severity=Severity.ERROR,
    )
    return SoapResponse(action=Action.ITI18_RESPONSE, body=response)


@pytest.fixture(scope="module")
def zeep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    needs_schemas()
    app = soap_app(
        services=[
            SoapService(
                path="/registry",
                handlers={Action.ITI18: stored_query},
                wsdl=WsdlProvider(DOCUMENT_REGISTRY, schema_dir=SCHEMAS),
            ),
            SoapService(
                path="/repository", handlers={}, wsdl=WsdlProvider(DOCUMENT_REPOSITORY, schema_dir=SCHEMAS)
            ),
            SoapService(
                path="/ids", handlers={}, wsdl=WsdlProvider(IMAGING_DOCUMENT_SOURCE, schema_dir=SCHEMAS)
            ),
        ],
        spool_dir=tmp_path_factory.mktemp("spool"),
    )
    with ServerThread(app) as running:
        yield running.url


def zeep_operations(client) -> set[str]:  # type: ignore[no-untyped-def]
    return {
        name
        for service in client.wsdl.services.values()
        for port in service.ports.values()
        for name in port.binding._operations
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/registry", {"DocumentRegistry_RegisterDocumentSet-b", "DocumentRegistry_RegistryStoredQuery"}),
        (
            "/repository",
            {"DocumentRepository_ProvideAndRegisterDocumentSet-b", "DocumentRepository_RetrieveDocumentSet"},
        ),
        ("/ids", {"ImagingDocumentSource_RetrieveImagingDocumentSet"}),
    ],
)
def test_zeep_loads_the_served_wsdl(zeep_server: str, path: str, expected: set[str]) -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(f"{zeep_server}{path}?wsdl")
    assert zeep_operations(client) == expected


def test_zeep_calls_the_stored_query_through_the_wsdl(zeep_server: str) -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(f"{zeep_server}/registry?wsdl")
    seen_requests.clear()
    result = client.service.DocumentRegistry_RegistryStoredQuery(
        ResponseOption={"returnType": "ObjectRef", "returnComposedObjects": True},
        AdhocQuery={"id": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"},
    )
    assert result.status == ResponseStatus.FAILURE
    (error,) = result.RegistryErrorList.RegistryError
    assert error.errorCode == "XDSStoredQueryMissingParam"
    assert (
        error.codeContext
        == "query urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d needs $XDSDocumentEntryPatientId"
    )
    # zeep put WS-Addressing headers on the request from the WSDL's wsaw:Action.
    (request,) = seen_requests
    assert request.action == Action.ITI18
    assert request.envelope.addressing.to == f"{zeep_server}/registry"
    assert (
        request.body.find(f"{{{NS_RIM}}}AdhocQuery").get("id")
        == "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    )
    assert request.envelope.header_blocks(f"{{{NS_WSA}}}MessageID")
