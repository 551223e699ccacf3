"""The portal forwards the patient's address to the registry, whose per-address throttle then
counts that patient's failures, not those of everyone behind the portal; an address forwarded by
a client that is not a trusted proxy is ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from consumer.self_service import SelfServiceClient
from consumer.token import TokenRefused
from registry.app import build_registry_app
from registry.config import RegistrySettings
from registry.grants import GrantStore
from registry.store.db import make_engine
from xds.http.server import ServerThread

KEY = "forwarding-test-key"
PIN = "482913"


def _records(db: str) -> list[tuple[str, str | None]]:
    engine = make_engine(db)
    try:
        return [(r.outcome, r.client_address) for r in GrantStore(engine).audit_records() if r.action == "token"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("trusted", [True, False], ids=["from-a-trusted-proxy", "forged"])
def test_the_registry_counts_the_forwarded_address(tmp_path: Path, trusted: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    settings = RegistrySettings(db=db, data_dir=tmp_path, mllp_port=0, access_policy="consent", grant_api_key=KEY)
    # uvicorn honours X-Forwarded-For only from forwarded_allow_ips (default: 127.0.0.1).
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1" if trusted else "192.0.2.1")
    with ServerThread(build_registry_app(settings)) as server:
        created = httpx.post(
            server.url + "/consent/grants",
            headers={"authorization": f"Bearer {KEY}"},
            json={"patient_id": "P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO", "pin": PIN,
                  "expires": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            timeout=30,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        code = created.json()["access_code"]
        client = SelfServiceClient(server.url + "/registry")
        with pytest.raises(TokenRefused):
            client.sign_in(code, "000000", client_address="203.0.113.7")
        assert client.sign_in(code, PIN, client_address="198.51.100.4").raw.startswith(b"<")
    expected = ["203.0.113.7", "198.51.100.4"] if trusted else ["127.0.0.1", "127.0.0.1"]
    assert [address for _outcome, address in _records(db)] == expected
