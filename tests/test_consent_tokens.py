"""The consent token's core pieces (DESIGN §4): access codes with a Damm check digit, scrypt PIN
hashing, SAML 2.0 assertions signed and verified with xmlsec (and the tampering a verifier must
refuse: changed scope, wrapping, expiry, audience, another key), and the WS-Security header."""

from __future__ import annotations

import random
import stat
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from xds.security import accesscode, pin, saml, wss
from xds.security.keys import generate_signing_material, load_or_create_signing_material
from xds.soap.envelope import build_request, parse_envelope_bytes
from xds.vocabulary import NS_DS, NS_SAML2, NS_WSSE, WSSE_PASSWORD_DIGEST, Action, GrantAttribute
from xds.xml import parse_xml, to_bytes

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
AUDIENCE = "urn:test:affinity-domain"
SA = f"{{{NS_SAML2}}}"


# -- access codes ----------------------------------------------------------------------------------
class SeededRng:
    """A reproducible stand-in for :mod:`secrets` (same ``randbelow`` interface)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def randbelow(self, bound: int) -> int:
        return self._random.randrange(bound)


def _sample_codes(count: int) -> list[str]:
    rng = SeededRng(20250301)
    return [accesscode.new_access_code(rng) for _ in range(count)]


def test_new_codes_are_eight_digits_and_check() -> None:
    codes = _sample_codes(200)
    assert len(set(codes)) > 190
    for code in codes:
        assert len(code) == 8 and code.isdigit()
        assert accesscode.check_access_code(code) == code


def test_check_digit_catches_every_single_digit_error() -> None:
    for code in _sample_codes(300):
        for position in range(8):
            for digit in "0123456789":
                if digit == code[position]:
                    continue
                typo = code[:position] + digit + code[position + 1 :]
                with pytest.raises(accesscode.AccessCodeError, match="check digit"):
                    accesscode.check_access_code(typo)


def test_check_digit_catches_every_adjacent_transposition() -> None:
    swapped = 0
    for code in _sample_codes(1000):
        for position in range(7):
            a, b = code[position], code[position + 1]
            if a == b:
                continue
            typo = code[:position] + b + a + code[position + 2 :]
            swapped += 1
            assert not accesscode.damm_valid(typo), (code, typo)
    assert swapped > 5000


def test_damm_known_value() -> None:
    # The worked example of the algorithm: 572 has check digit 4.
    assert accesscode.damm_check_digit("572") == "4"
    assert accesscode.damm_valid("5724")
    assert not accesscode.damm_valid("5274")


def test_codes_normalise_and_format() -> None:
    code = _sample_codes(1)[0]
    shown = accesscode.format_access_code(code)
    assert shown == f"{code[:4]}-{code[4:]}"
    assert accesscode.check_access_code(f" {code[:4]} - {code[4:]} ") == code
    with pytest.raises(accesscode.AccessCodeError, match="only digits"):
        accesscode.check_access_code(code[:7] + "x")
    with pytest.raises(accesscode.AccessCodeError, match="8 digits, not 7"):
        accesscode.check_access_code(code[:7])


# -- PINs ------------------------------------------------------------------------------------------
FAST = pin.ScryptParams(n=2**10)


def test_pin_policy_names_the_rule() -> None:
    assert pin.check_pin("1234") is pin.PinKind.DIGITS
    assert pin.check_pin("123456789012") is pin.PinKind.DIGITS
    assert pin.check_pin("correct horse") is pin.PinKind.PASSPHRASE
    with pytest.raises(pin.PinPolicyError, match="4 to 12 digits"):
        pin.check_pin("123")
    with pytest.raises(pin.PinPolicyError, match="4 to 12 digits"):
        pin.check_pin("1234567890123")
    with pytest.raises(pin.PinPolicyError, match="at least 8 characters"):
        pin.check_pin("abc1")


def test_scrypt_hash_salted_and_verified() -> None:
    first = pin.hash_pin("2468", params=FAST)
    second = pin.hash_pin("2468", params=FAST)
    assert first != second  # each hash has its own salt
    assert first.startswith("scrypt$1024$8$1$")
    assert "2468" not in first
    assert pin.verify_pin("2468", first) and pin.verify_pin("2468", second)
    assert not pin.verify_pin("2469", first)
    # The stored parameters are used, whatever the current default.
    assert pin.verify_pin("2468", first)
    with pytest.raises(ValueError):
        pin.verify_pin("2468", "md5$abc")


def test_passphrase_unicode_normalised() -> None:
    stored = pin.hash_pin("caf\u00e9 au lait", params=FAST)
    assert pin.verify_pin("cafe\u0301 au lait", stored)


# -- SAML assertions -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def material():  # type: ignore[no-untyped-def]
    return generate_signing_material(common_name="test issuer")


@pytest.fixture(scope="module")
def other_material():  # type: ignore[no-untyped-def]
    return generate_signing_material(common_name="someone else")


SCOPE = saml.GrantScope(
    patient_id="P1^^^&1.2.3.4&ISO",
    manifest_unique_ids=frozenset({"1.2.3.100", "1.2.3.101"}),
    study_instance_uids=frozenset({"1.2.3.200", "1.2.3.201"}),
    report_unique_ids=frozenset({"1.2.3.300"}),
)


def _issue(material, **overrides) -> bytes:  # type: ignore[no-untyped-def]
    options = dict(
        issuer="urn:test:registry",
        subject="grant-1",
        audience=AUDIENCE,
        scope=SCOPE,
        now=NOW,
        lifetime=timedelta(minutes=5),
    )
    options.update(overrides)
    return saml.issue_assertion(key_pem=material.key_pem, cert_pem=material.cert_pem, **options)


def _verify(element: etree._Element, material, *, now: datetime = NOW) -> saml.VerifiedAssertion:  # type: ignore[no-untyped-def]
    return saml.verify_assertion(element, trusted_cert=material.cert_pem, audience=AUDIENCE, now=now)


def test_signed_assertion_verifies_and_reads_back(material) -> None:  # type: ignore[no-untyped-def]
    verified = _verify(parse_xml(_issue(material)), material)
    assert verified.grant_id == "grant-1"
    assert verified.issuer == "urn:test:registry"
    assert verified.scope == SCOPE
    assert verified.not_on_or_after - verified.not_before == timedelta(minutes=5)
    assert verified.audiences == (AUDIENCE,)
    assert verified.scope.permits_document("1.2.3.300")
    assert not verified.scope.permits_document("1.2.3.999")


def test_assertion_shape_follows_saml_core(material) -> None:  # type: ignore[no-untyped-def]
    """No SAML XSD is among the shared schemas, so the element order and the required attributes
    of SAML Core §2.3.3 and the signature profile of §5.4 are checked here."""
    root = parse_xml(_issue(material))
    assert root.tag == f"{SA}Assertion"
    assert root.get("Version") == "2.0"
    assert root.get("ID", "").startswith("_")  # an xs:ID cannot start with a digit
    assert root.get("IssueInstant") == "2025-03-01T12:00:00Z"
    children = [etree.QName(c).localname for c in root]
    assert children == ["Issuer", "Signature", "Subject", "Conditions", "AttributeStatement"]
    conditions = root.find(f"{SA}Conditions")
    assert conditions.get("NotBefore") == "2025-03-01T12:00:00Z"
    assert conditions.get("NotOnOrAfter") == "2025-03-01T12:05:00Z"
    reference = root.find(f"{{{NS_DS}}}Signature/{{{NS_DS}}}SignedInfo/{{{NS_DS}}}Reference")
    assert reference.get("URI") == "#" + root.get("ID")
    assert root.find(f".//{{{NS_DS}}}X509Certificate") is not None
    names = [a.get("Name") for a in root.iter(f"{SA}Attribute")]
    assert GrantAttribute.MANIFEST_UNIQUE_ID in names and GrantAttribute.STUDY_INSTANCE_UID in names


def _manifest_values(root: etree._Element) -> list[etree._Element]:
    for attribute in root.iter(f"{SA}Attribute"):
        if attribute.get("Name") == GrantAttribute.MANIFEST_UNIQUE_ID:
            return list(attribute)
    raise AssertionError("no manifest attribute")


def test_changed_attribute_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material))
    _manifest_values(root)[0].text = "1.2.3.666"
    with pytest.raises(saml.SignatureInvalid):
        _verify(root, material)


def test_added_attribute_value_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material))
    values = _manifest_values(root)
    extra = deepcopy(values[0])
    extra.text = "1.2.3.667"
    values[0].addnext(extra)
    with pytest.raises(saml.SignatureInvalid):
        _verify(root, material)


def test_signature_wrapping_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    """XSW: a forged assertion carries the genuine signature, whose Reference names the genuine
    assertion hidden inside the forged one. The signature would verify over the hidden original;
    the verifier must refuse because it does not cover the element it reads."""
    genuine = parse_xml(_issue(material))
    original_id = genuine.get("ID")
    # (a) the forged root takes a new ID; the genuine (with its ID) hides under the Subject.
    forged = deepcopy(genuine)
    forged.set("ID", "_forged")
    _manifest_values(forged)[0].text = "1.2.3.666"
    hidden = deepcopy(genuine)
    hidden.remove(hidden.find(f"{{{NS_DS}}}Signature"))
    forged.find(f"{SA}Subject").append(hidden)
    assert forged.find(f"{{{NS_DS}}}Signature//{{{NS_DS}}}Reference").get("URI") == f"#{original_id}"
    with pytest.raises(saml.SignatureInvalid, match="does not reference"):
        _verify(forged, material)
    # (b) the forged root keeps the genuine ID, so a second element holds it.
    forged2 = deepcopy(genuine)
    _manifest_values(forged2)[0].text = "1.2.3.666"
    forged2.find(f"{SA}Subject").append(deepcopy(genuine))
    with pytest.raises(saml.SignatureInvalid, match="more than once"):
        _verify(forged2, material)
    # (c) the genuine assertion wrapped in a foreign element is still read as itself.
    wrapper = etree.Element("{urn:x}Wrapper")
    wrapper.append(deepcopy(genuine))
    assert _verify(wrapper[0], material).scope == SCOPE


def test_signature_moved_to_another_reference_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material))
    root.set("ID", "_other")
    with pytest.raises(saml.SignatureInvalid, match="does not reference"):
        _verify(root, material)


def test_unsigned_assertion_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material))
    root.remove(root.find(f"{{{NS_DS}}}Signature"))
    with pytest.raises(saml.SignatureInvalid, match="not signed"):
        _verify(root, material)


def test_other_key_is_rejected(material, other_material) -> None:  # type: ignore[no-untyped-def]
    # Signed by another key, which also puts its own certificate in KeyInfo: not trusted.
    root = parse_xml(_issue(other_material))
    with pytest.raises(saml.SignatureInvalid):
        _verify(root, material)
    assert _verify(root, other_material).grant_id == "grant-1"


def test_time_window_with_skew(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material))
    assert _verify(root, material, now=NOW + timedelta(minutes=5, seconds=59)).grant_id == "grant-1"
    with pytest.raises(saml.AssertionExpired):
        _verify(root, material, now=NOW + timedelta(minutes=6))
    assert _verify(root, material, now=NOW - timedelta(seconds=59)).grant_id == "grant-1"
    with pytest.raises(saml.AssertionNotYetValid):
        _verify(root, material, now=NOW - timedelta(minutes=2))


def test_wrong_audience_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    root = parse_xml(_issue(material, audience="urn:test:elsewhere"))
    with pytest.raises(saml.AudienceMismatch):
        _verify(root, material)


def test_not_an_assertion_is_rejected(material) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(saml.MalformedAssertion):
        _verify(etree.Element("{urn:x}Other"), material)


# -- key material ----------------------------------------------------------------------------------
def test_key_generated_once_with_private_permissions(tmp_path: Path) -> None:
    key, cert = tmp_path / "keys" / "k.pem", tmp_path / "keys" / "c.pem"
    first = load_or_create_signing_material(key_path=key, cert_path=cert, common_name="t")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    second = load_or_create_signing_material(key_path=key, cert_path=cert, common_name="t")
    assert second.key_pem == first.key_pem and second.cert_pem == first.cert_pem
    assert "PRIVATE" not in repr(first)
    cert.unlink()
    with pytest.raises(FileNotFoundError, match="go together"):
        load_or_create_signing_material(key_path=key, cert_path=cert, common_name="t")


# -- WS-Security -----------------------------------------------------------------------------------
def _envelope_with(header: etree._Element) -> bytes:
    body = etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0}AdhocQueryRequest")
    return build_request(body, action=Action.ITI18, extra_headers=[header])


def test_username_token_round_trip() -> None:
    header = wss.security_header(wss.UsernameToken(username="1234-5678", password="2468"))
    envelope = parse_envelope_bytes(_envelope_with(header))
    token = wss.find_token(envelope.headers)
    assert token == wss.UsernameToken(username="1234-5678", password="2468")
    assert "2468" not in repr(token)


def test_saml_token_round_trip_verifies(material) -> None:  # type: ignore[no-untyped-def]
    assertion = parse_xml(_issue(material))
    envelope = parse_envelope_bytes(_envelope_with(wss.security_header(wss.SamlToken(assertion))))
    token = wss.find_token(envelope.headers)
    assert isinstance(token, wss.SamlToken)
    # Inside the header (new ancestors, new namespace context) the signature still holds.
    assert _verify(token.assertion, material).scope == SCOPE


def test_security_header_rules() -> None:
    body = etree.Element("{urn:x}Body")
    assert wss.find_token(parse_envelope_bytes(build_request(body, action=Action.ITI18)).headers) is None
    empty = etree.Element(f"{{{NS_WSSE}}}Security")
    with pytest.raises(wss.WsSecurityError, match="no SAML assertion"):
        wss.find_token([empty])
    header = wss.security_header(wss.UsernameToken(username="12345678", password="2468"))
    with pytest.raises(wss.WsSecurityError, match="more than one"):
        wss.find_token([header, deepcopy(header)])
    digest = deepcopy(header)
    digest.find(f".//{{{NS_WSSE}}}Password").set("Type", WSSE_PASSWORD_DIGEST)
    with pytest.raises(wss.WsSecurityError, match="PasswordDigest") as caught:
        wss.find_token([digest])
    assert "2468" not in str(caught.value)
    # A header for another role is not ours.
    other = deepcopy(header)
    other.set("{http://www.w3.org/2003/05/soap-envelope}role", "urn:some:intermediary")
    assert wss.find_token([other]) is None
    assert to_bytes(header).count(b"mustUnderstand") == 1


def test_any_secret_hashes_like_a_pin_and_a_malformed_stored_value_never_matches() -> None:
    from xds.security.pin import ScryptParams, hash_secret, verify_secret

    fast = ScryptParams(n=2**10)
    stored = hash_secret("correct horse battery", params=fast)
    assert stored.startswith("scrypt$1024$8$1$") and "correct" not in stored
    assert verify_secret("correct horse battery", stored) and not verify_secret("correct horse batterY", stored)
    assert hash_secret("same", params=fast) != hash_secret("same", params=fast)  # a fresh salt each time
    for broken in ("", "scrypt$1024$8$1$", "bcrypt$x$y$z$a$b", "scrypt$notanumber$8$1$AAAA$AAAA"):
        assert verify_secret("anything", broken) is False
