"""The IHE WSDLs, generated: Document Registry, Document Repository, Imaging Document Source.

The project publishes a WSDL at ``<endpoint>?wsdl`` so stock WSDL-driven clients (zeep, CXF,
.NET) can call it. The documents are generated here from a small description
(:class:`WsdlDefinition`) rather than copied from IHE's implementation material: WSDL 1.1 with
the SOAP 1.2 document/literal binding, ``wsaw:UsingAddressing``, and ``wsaw:Action`` on every
input and output (ITI TF-2x Appendix V; names as in the IHE WSDLs, xds-notes §1.1).

``soap12:address`` is the URL the client used to fetch the WSDL. The ``types`` section imports
the standard schemas (ebRS 3.0, XDS.b, XDS-I.b):

* by default from their public OASIS / IHE locations (:data:`PUBLIC_SCHEMA_BASES`);
* when a schema directory is configured, from the endpoint itself as ``?xsd=<relative path>``,
  served by :meth:`WsdlProvider.schema` out of that directory only (no path traversal), with
  every relative ``schemaLocation`` inside the served schemas rewritten to ``?xsd=`` URLs too,
  so a client never leaves the endpoint. The directory has the IHE layout
  (``schema/ebRS/rim.xsd``, ``schema/IHE/...``), e.g. ``../shared/schemas``.

Public API::

    WsdlOperation, WsdlSchema, WsdlDefinition
    DOCUMENT_REGISTRY, DOCUMENT_REPOSITORY, IMAGING_DOCUMENT_SOURCE     # WsdlDefinition values
    render_wsdl(definition, *, address, schema_base=None) -> bytes
    WsdlProvider(definition, *, schema_dir=None)
        .wsdl(endpoint_url) -> bytes
        .schema(name, *, endpoint_url) -> bytes | None                  # None: answer 404
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit

from lxml import etree

from xds.vocabulary import (
    NS_LCM,
    NS_QUERY,
    NS_RIM,
    NS_RS,
    NS_WSAW,
    NS_WSDL,
    NS_WSDL_SOAP12,
    NS_XDS,
    NS_XDSI,
    NS_XSD,
    SOAP_HTTP_TRANSPORT,
    Action,
)
from xds.xml import XmlError, parse_xml, qname, to_bytes

__all__ = [
    "DOCUMENT_REGISTRY",
    "DOCUMENT_REPOSITORY",
    "IMAGING_DOCUMENT_SOURCE",
    "PUBLIC_SCHEMA_BASES",
    "WsdlDefinition",
    "WsdlOperation",
    "WsdlProvider",
    "WsdlSchema",
    "render_wsdl",
]

#: Public homes of the schemas, by the first directory of their path in the IHE tree.
#: ebRS 3.0 is published by OASIS; the IHE schemas by IHE's implementation-material site.
PUBLIC_SCHEMA_BASES: Final[Mapping[str, str]] = {
    "schema/ebRS/": "http://docs.oasis-open.org/regrep/v3.0/schema/",
    "schema/IHE/": "https://ftp.ihe.net/TF_Implementation_Material/ITI/schema/IHE/",
}

_PREFIXES: Final = {
    NS_XDS: "ihe",
    NS_XDSI: "iherad",
    NS_QUERY: "query",
    NS_LCM: "lcm",
    NS_RS: "rs",
    NS_RIM: "rim",
}


@dataclass(frozen=True, slots=True)
class WsdlOperation:
    """One operation: its name, message elements (Clark names) and wsa:Action values."""

    name: str
    input_message: str
    input_element: str
    input_action: str
    output_message: str
    output_element: str
    output_action: str


@dataclass(frozen=True, slots=True)
class WsdlSchema:
    """A schema the types section imports: namespace and path in the IHE tree."""

    namespace: str
    path: str

    @property
    def public_location(self) -> str:
        for prefix, base in PUBLIC_SCHEMA_BASES.items():
            if self.path.startswith(prefix):
                return base + self.path[len(prefix) :]
        raise ValueError(f"no public location for {self.path}")


@dataclass(frozen=True, slots=True)
class WsdlDefinition:
    """What a generated WSDL describes: names, operations and the schemas of its messages."""

    name: str
    documentation: str
    target_namespace: str
    service: str
    port_type: str
    binding: str
    port: str
    operations: tuple[WsdlOperation, ...]
    schemas: tuple[WsdlSchema, ...]

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(op.input_action for op in self.operations)


_RS = WsdlSchema(NS_RS, "schema/ebRS/rs.xsd")
_RIM = WsdlSchema(NS_RIM, "schema/ebRS/rim.xsd")
_LCM = WsdlSchema(NS_LCM, "schema/ebRS/lcm.xsd")
_QUERY = WsdlSchema(NS_QUERY, "schema/ebRS/query.xsd")
_XDS = WsdlSchema(NS_XDS, "schema/IHE/XDS.b_DocumentRepository.xsd")
_XDSI = WsdlSchema(NS_XDSI, "schema/IHE/XDSI.b_ImagingDocumentSource.xsd")

# ITI TF-2b §3.18 and §3.42 (ITI-18, ITI-42).
DOCUMENT_REGISTRY: Final = WsdlDefinition(
    name="DocumentRegistry",
    documentation="IHE XDS.b Document Registry",
    target_namespace=NS_XDS,
    service="DocumentRegistry_Service",
    port_type="DocumentRegistry_PortType",
    binding="DocumentRegistry_Binding_Soap12",
    port="DocumentRegistry_Port_Soap12",
    operations=(
        WsdlOperation(
            name="DocumentRegistry_RegisterDocumentSet-b",
            input_message="RegisterDocumentSet-b_Message",
            input_element=qname(NS_LCM, "SubmitObjectsRequest"),
            input_action=Action.ITI42,
            output_message="RegisterDocumentSet-bResponse_Message",
            output_element=qname(NS_RS, "RegistryResponse"),
            output_action=Action.ITI42_RESPONSE,
        ),
        WsdlOperation(
            name="DocumentRegistry_RegistryStoredQuery",
            input_message="RegistryStoredQuery_Message",
            input_element=qname(NS_QUERY, "AdhocQueryRequest"),
            input_action=Action.ITI18,
            output_message="RegistryStoredQueryResponse_Message",
            output_element=qname(NS_QUERY, "AdhocQueryResponse"),
            output_action=Action.ITI18_RESPONSE,
        ),
    ),
    schemas=(_RIM, _RS, _QUERY, _LCM),
)

# ITI TF-2b §3.41 and §3.43 (ITI-41, ITI-43).
DOCUMENT_REPOSITORY: Final = WsdlDefinition(
    name="DocumentRepository",
    documentation="IHE XDS.b Document Repository",
    target_namespace=NS_XDS,
    service="DocumentRepository_Service",
    port_type="DocumentRepository_PortType",
    binding="DocumentRepository_Binding_Soap12",
    port="DocumentRepository_Port_Soap12",
    operations=(
        WsdlOperation(
            name="DocumentRepository_ProvideAndRegisterDocumentSet-b",
            input_message="ProvideAndRegisterDocumentSet-b_Message",
            input_element=qname(NS_XDS, "ProvideAndRegisterDocumentSetRequest"),
            input_action=Action.ITI41,
            output_message="ProvideAndRegisterDocumentSet-bResponse_Message",
            output_element=qname(NS_RS, "RegistryResponse"),
            output_action=Action.ITI41_RESPONSE,
        ),
        WsdlOperation(
            name="DocumentRepository_RetrieveDocumentSet",
            input_message="RetrieveDocumentSet_Message",
            input_element=qname(NS_XDS, "RetrieveDocumentSetRequest"),
            input_action=Action.ITI43,
            output_message="RetrieveDocumentSetResponse_Message",
            output_element=qname(NS_XDS, "RetrieveDocumentSetResponse"),
            output_action=Action.ITI43_RESPONSE,
        ),
    ),
    schemas=(_RIM, _RS, _QUERY, _LCM, _XDS),
)

# RAD TF-3 §4.69 (RAD-69).
IMAGING_DOCUMENT_SOURCE: Final = WsdlDefinition(
    name="ImagingDocumentSource",
    documentation="IHE XDS-I.b Imaging Document Source",
    target_namespace=NS_XDSI,
    service="ImagingDocumentSource",
    port_type="ImagingDocumentSource_PortType",
    binding="ImagingDocumentSource_Binding_Soap12",
    port="ImagingDocumentSource_Port_Soap12",
    operations=(
        WsdlOperation(
            name="ImagingDocumentSource_RetrieveImagingDocumentSet",
            input_message="RetrieveImagingDocumentSetRequest_Message",
            input_element=qname(NS_XDSI, "RetrieveImagingDocumentSetRequest"),
            input_action=Action.RAD69,
            output_message="RetrieveDocumentSetResponse_Message",
            output_element=qname(NS_XDS, "RetrieveDocumentSetResponse"),
            output_action=Action.RAD69_RESPONSE,
        ),
    ),
    schemas=(_RIM, _RS, _QUERY, _LCM, _XDS, _XDSI),
)


def _w(tag: str) -> str:
    return qname(NS_WSDL, tag)


def _prefixed(clark: str) -> str:
    ns, _, local = clark[1:].partition("}")
    return f"{_PREFIXES[ns]}:{local}"


def render_wsdl(definition: WsdlDefinition, *, address: str, schema_base: str | None = None) -> bytes:
    """The WSDL 1.1 document for ``definition``, with ``soap12:address`` = ``address``.

    ``schema_base`` is the URL the schemas are served from as ``<schema_base>?xsd=<path>``;
    None imports them from their public locations.
    """
    nsmap = {
        None: NS_WSDL,
        "tns": definition.target_namespace,
        "soap12": NS_WSDL_SOAP12,
        "wsaw": NS_WSAW,
        "xsd": NS_XSD,
    }
    for ns, prefix in _PREFIXES.items():
        nsmap.setdefault(prefix, ns)
    root = etree.Element(
        _w("definitions"), nsmap=nsmap, name=definition.name, targetNamespace=definition.target_namespace
    )
    etree.SubElement(root, _w("documentation")).text = definition.documentation

    types = etree.SubElement(root, _w("types"))
    schema = etree.SubElement(types, qname(NS_XSD, "schema"), elementFormDefault="qualified")
    for item in definition.schemas:
        location = (
            f"{schema_base}?xsd={quote(item.path, safe='/')}"
            if schema_base is not None
            else item.public_location
        )
        etree.SubElement(schema, qname(NS_XSD, "import"), namespace=item.namespace, schemaLocation=location)

    messages: dict[str, str] = {}
    for op in definition.operations:
        messages.setdefault(op.input_message, op.input_element)
        messages.setdefault(op.output_message, op.output_element)
    for name, element in messages.items():
        message = etree.SubElement(root, _w("message"), name=name)
        etree.SubElement(message, _w("part"), name="body", element=_prefixed(element))

    port_type = etree.SubElement(root, _w("portType"), name=definition.port_type)
    for op in definition.operations:
        operation = etree.SubElement(port_type, _w("operation"), name=op.name)
        etree.SubElement(operation, _w("input"), message=f"tns:{op.input_message}").set(
            qname(NS_WSAW, "Action"), op.input_action
        )
        etree.SubElement(operation, _w("output"), message=f"tns:{op.output_message}").set(
            qname(NS_WSAW, "Action"), op.output_action
        )

    binding = etree.SubElement(
        root, _w("binding"), name=definition.binding, type=f"tns:{definition.port_type}"
    )
    etree.SubElement(
        binding, qname(NS_WSDL_SOAP12, "binding"), style="document", transport=SOAP_HTTP_TRANSPORT
    )
    # WS-Addressing 1.0 WSDL Binding §3.1: the endpoint requires WS-Addressing.
    etree.SubElement(binding, qname(NS_WSAW, "UsingAddressing")).set(_w("required"), "true")
    for op in definition.operations:
        operation = etree.SubElement(binding, _w("operation"), name=op.name)
        etree.SubElement(operation, qname(NS_WSDL_SOAP12, "operation"), soapAction=op.input_action)
        for direction in ("input", "output"):
            etree.SubElement(
                etree.SubElement(operation, _w(direction)), qname(NS_WSDL_SOAP12, "body"), use="literal"
            )

    service = etree.SubElement(root, _w("service"), name=definition.service)
    port = etree.SubElement(service, _w("port"), name=definition.port, binding=f"tns:{definition.binding}")
    etree.SubElement(port, qname(NS_WSDL_SOAP12, "address"), location=address)
    return to_bytes(root, xml_declaration=True)


_SCHEMA_REFERENCES: Final = tuple(qname(NS_XSD, tag) for tag in ("import", "include", "redefine", "override"))


class WsdlProvider:
    """Serves one service's WSDL and, when ``schema_dir`` is set, the schemas it imports."""

    def __init__(self, definition: WsdlDefinition, *, schema_dir: Path | str | None = None) -> None:
        self.definition = definition
        self.schema_dir = Path(schema_dir).resolve() if schema_dir is not None else None

    def wsdl(self, endpoint_url: str) -> bytes:
        """The WSDL for an endpoint reached at ``endpoint_url`` (no query string)."""
        base = endpoint_url if self.schema_dir is not None else None
        return render_wsdl(self.definition, address=endpoint_url, schema_base=base)

    def _locate(self, name: str) -> Path | None:
        if self.schema_dir is None or not name or "\\" in name or "\x00" in name:
            return None
        if name.startswith("/") or urlsplit(name).scheme:
            return None
        parts = name.split("/")
        if any(part in ("", ".", "..") for part in parts):
            return None
        candidate = (self.schema_dir / name).resolve()
        if not candidate.is_relative_to(self.schema_dir) or candidate.suffix != ".xsd":
            return None
        return candidate if candidate.is_file() else None

    def schema(self, name: str, *, endpoint_url: str) -> bytes | None:
        """The schema file ``name`` (a path relative to the schema directory), or None.

        Only ``.xsd`` files inside the directory are served; anything else (``..``, absolute
        paths, other files) gives None, which the server answers with 404. Relative
        ``schemaLocation`` references inside the schema are rewritten to ``?xsd=`` URLs.
        """
        path = self._locate(name)
        if path is None:
            return None
        try:
            root = parse_xml(path.read_bytes())
        except (OSError, XmlError):
            return None
        directory = posixpath.dirname(name)
        for element in root.iter(*_SCHEMA_REFERENCES):
            location = element.get("schemaLocation")
            if not location or urlsplit(location).scheme or location.startswith("/"):
                continue
            target = posixpath.normpath(posixpath.join(directory, location))
            if target.startswith("../") or target == "..":
                continue
            element.set("schemaLocation", f"{endpoint_url}?xsd={quote(target, safe='/')}")
        return to_bytes(root, xml_declaration=True)
