"""ITI-42 outcomes through the lean registry client the repository runs with: what the registry
answered, and whether a failed call can have reached it (REJECTED only when it cannot)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from lxml import etree

from repository.registry_link import Outcome, RegisterResult, register
from xds.errors import ErrorCode, RegistryError
from xds.http.client import LeanAsyncSoapClient
from xds.http.server import ServerThread, SoapRequest, SoapResponse, SoapService, soap_app
from xds.metadata.responses import build_registry_response
from xds.soap.fault import FaultCode, SoapFault
from xds.vocabulary import NS_LCM, Action


def _sor() -> etree._Element:
    return etree.Element(f"{{{NS_LCM}}}SubmitObjectsRequest")


def _service(path: str, answer: str) -> SoapService:
    async def handler(request: SoapRequest) -> SoapResponse:
        if answer == "success":
            body = build_registry_response([])
        elif answer == "failure":
            body = build_registry_response([RegistryError(ErrorCode.UNKNOWN_PATIENT_ID, "who?")])
        elif answer == "sender-fault":
            raise SoapFault(FaultCode.SENDER, "bad request")
        elif answer == "receiver-fault":
            raise SoapFault(FaultCode.RECEIVER, "broke half-way")
        else:  # an answer that is not a RegistryResponse
            body = etree.Element(f"{{{NS_LCM}}}SubmitObjectsRequest")
        return SoapResponse(action=Action.ITI42_RESPONSE, body=body)

    return SoapService(path=path, handlers={Action.ITI42: handler})


ANSWERS = {
    "success": Outcome.ACCEPTED,
    "failure": Outcome.REJECTED,
    "sender-fault": Outcome.REJECTED,
    "receiver-fault": Outcome.UNKNOWN,
    "other": Outcome.UNKNOWN,
}


@pytest.fixture(scope="module")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = soap_app(
        services=[_service(f"/{name}", name) for name in ANSWERS],
        spool_dir=tmp_path_factory.mktemp("registry-spool"),
    )
    with ServerThread(app) as running:
        yield running.url


def _register(url: str, spool: Path, *, timeout: float = 10) -> RegisterResult:
    async def scenario() -> RegisterResult:
        async with LeanAsyncSoapClient(url, timeout=timeout, spool_dir=spool) as client:
            return await register(client, _sor(), deadline=3 * timeout)

    return anyio.run(scenario)


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_registry_answers(registry_url: str, answer: str, tmp_path: Path) -> None:
    result = _register(f"{registry_url}/{answer}", tmp_path)
    assert result.outcome is ANSWERS[answer]
    assert (result.response is not None) == (answer in ("success", "failure"))


def test_a_registry_that_cannot_be_reached_saw_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _register(f"http://127.0.0.1:{port}/registry", tmp_path)
    assert result.outcome is Outcome.REJECTED
    assert result.errors[0].code is ErrorCode.REGISTRY_NOT_AVAILABLE


@pytest.mark.parametrize("behaviour", ["close", "silent"])
def test_a_registry_that_took_the_request_and_failed_may_have_registered_it(behaviour: str, tmp_path: Path) -> None:
    seen: list[bytes] = []

    async def scenario() -> RegisterResult:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.readuntil(b"\r\n\r\n"))
            if behaviour == "silent":
                await asyncio.sleep(3)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            async with LeanAsyncSoapClient(f"http://127.0.0.1:{port}/registry", timeout=0.5, spool_dir=tmp_path) as client:
                return await register(client, _sor(), deadline=5)

    result = anyio.run(scenario)
    assert len(seen) == 1
    assert result.outcome is Outcome.UNKNOWN
    assert result.errors[0].code is ErrorCode.REGISTRY_NOT_AVAILABLE
