"""The city's PKI (ops/pki.py) and the checks every verifier makes (node.domain.certificates,
node.app.revocations): real keys and certificates made with ``cryptography``, no network."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from govnet.node.app.revocations import RevocationError, read_bundle
from govnet.node.domain.certificates import (
    EXPIRED,
    OUTSIDE_SUBTREE,
    REVOKED,
    UNKNOWN,
    CertificateRefused,
    check_certificate,
    identity_of,
)
from govnet.ops import pki

NOW = datetime.now(UTC)


def never(issuer: str, serial: int) -> bool:
    return False


@pytest.fixture
def city(tmp_path: Path) -> pki.Ca:
    return pki.init_ca(tmp_path / "root", "371100")


@pytest.fixture
def county_ca(tmp_path: Path, city: pki.Ca) -> pki.Ca:
    return pki.create_intermediate(tmp_path / "county-ca", city.directory, "371102")


def test_a_node_certificate_names_the_node_and_its_level_and_its_key_stays_private(tmp_path: Path, city: pki.Ca) -> None:
    path = pki.enrol_node(tmp_path / "node", "371102001", "township", city.directory)
    cert = pki.load_cert(path)
    identity, issuer = check_certificate(cert, NOW, never)
    assert (identity.kind, identity.name, identity.level, issuer) == ("node", "371102001", "township", "371100")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "371102001"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:govnet:node:township:371102001" in names.get_values_for_type(x509.UniformResourceIdentifier)
    assert "371102001.node.govnet" in names.get_values_for_type(x509.DNSName)
    for key in (tmp_path / "node" / "tls" / "node.key", city.directory / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert (tmp_path / "node" / "tls" / "ca.crt").read_bytes() == (city.directory / "root.crt").read_bytes()
    assert cert.not_valid_after_utc - NOW > timedelta(days=364)


def test_a_client_certificate_names_its_role(tmp_path: Path, city: pki.Ca) -> None:
    cert = pki.load_cert(pki.enrol_client(tmp_path / "cli", "wangfang", "ops", city.directory))
    assert identity_of(cert).kind == "client" and identity_of(cert).role == "ops" and identity_of(cert).name == "wangfang"
    assert stat.S_IMODE((tmp_path / "cli" / "client.key").stat().st_mode) == 0o600
    with pytest.raises(pki.PkiError, match="role"):
        pki.enrol_client(tmp_path / "cli2", "x", "mayor", city.directory)
    with pytest.raises(pki.PkiError, match="ASCII"):  # a URI name is ASCII
        pki.enrol_client(tmp_path / "cli3", "王芳", "ops", city.directory)


def test_a_county_ca_enrols_its_own_subtree_and_nobody_else(tmp_path: Path, county_ca: pki.Ca) -> None:
    chain = pki.load_certs(pki.enrol_node(tmp_path / "town", "371102001", "township", county_ca.directory))
    assert [c.subject for c in chain] == [chain[0].subject, county_ca.cert.subject]  # the peer gets the intermediate
    assert check_certificate(chain[0], NOW, never)[1] == "371102"
    pki.enrol_node(tmp_path / "village", "371102001201", "village", county_ca.directory)
    for node_id, level in (("371103001", "township"), ("371100", "city"), ("371103", "county")):
        with pytest.raises(pki.PkiError, match="outside the subtree"):
            pki.enrol_node(tmp_path / node_id, node_id, level, county_ca.directory)
    with pytest.raises(pki.PkiError, match="only the city's root"):
        pki.create_intermediate(tmp_path / "sub", county_ca.directory, "371102")


def test_a_certificate_forged_by_hand_outside_the_issuers_subtree_is_refused_by_the_verifier(
        tmp_path: Path, county_ca: pki.Ca) -> None:
    # What `issue` refuses, built directly with the county's key: a township of another county.
    identity = pki.node_identity("371103001", "township")
    key = pki.new_key()
    forged = (x509.CertificateBuilder().subject_name(pki._subject(identity)).issuer_name(county_ca.cert.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(NOW - timedelta(hours=1)).not_valid_after(NOW + timedelta(days=1))
              .add_extension(pki._names(identity), critical=False)
              .sign(county_ca.key, hashes.SHA256()))
    with pytest.raises(CertificateRefused) as refused:
        check_certificate(forged, NOW, never)
    assert refused.value.reason == OUTSIDE_SUBTREE and "371103001" in str(refused.value)


def test_an_expired_or_not_yet_valid_certificate_is_refused(tmp_path: Path, city: pki.Ca) -> None:
    cert = pki.load_cert(pki.enrol_node(tmp_path / "n", "371102", "county", city.directory, days=30))
    for when in (NOW + timedelta(days=31), NOW - timedelta(days=1)):
        with pytest.raises(CertificateRefused) as refused:
            check_certificate(cert, when, never)
        assert refused.value.reason == EXPIRED


def test_a_certificate_that_names_no_govnet_node_is_unknown(tmp_path: Path, city: pki.Ca) -> None:
    key = pki.new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "371102")])
    plain = (x509.CertificateBuilder().subject_name(name).issuer_name(city.cert.subject).public_key(key.public_key())
             .serial_number(1).not_valid_before(NOW - timedelta(hours=1)).not_valid_after(NOW + timedelta(days=1))
             .sign(city.key, hashes.SHA256()))
    with pytest.raises(CertificateRefused) as refused:
        check_certificate(plain, NOW, never)
    assert refused.value.reason == UNKNOWN


def test_revoking_a_node_writes_a_signed_list_that_verifiers_believe(tmp_path: Path, city: pki.Ca,
                                                                     county_ca: pki.Ca) -> None:
    cert = pki.load_cert(pki.enrol_node(tmp_path / "n", "371102", "county", city.directory))
    other = pki.load_cert(pki.enrol_node(tmp_path / "m", "371103", "county", city.directory))
    path, added = pki.revoke(city.directory, node="371102")
    assert added == [cert.serial_number]
    issuer, number, serials = read_bundle(path.read_text(), city.root)
    assert (issuer, number) == ("371100", 1) and cert.serial_number in serials and other.serial_number not in serials
    with pytest.raises(CertificateRefused) as refused:
        check_certificate(cert, NOW, lambda i, s: i == issuer and s in serials)
    assert refused.value.reason == REVOKED
    _, again = pki.revoke(city.directory, [other.serial_number])
    assert read_bundle((city.directory / "revocations.crl").read_text(), city.root)[1] == 2 and again

    # a county's own list is believed too (its CA chains to the root); a stranger's is not
    town = pki.load_cert(pki.enrol_node(tmp_path / "t", "371102001", "township", county_ca.directory))
    county_list, _ = pki.revoke(county_ca.directory, [town.serial_number])
    assert read_bundle(county_list.read_text(), city.root)[:2] == ("371102", 1)
    stranger = pki.init_ca(tmp_path / "stranger", "371100")
    forged, _ = pki.revoke(stranger.directory, [town.serial_number])
    with pytest.raises(RevocationError, match="not the city's root"):
        read_bundle(forged.read_text(), city.root)
    tampered = path.read_text().replace("-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----", 1)
    tampered = tampered[:60] + ("A" if tampered[60] != "A" else "B") + tampered[61:]
    with pytest.raises(RevocationError):
        read_bundle(tampered, city.root)


def test_renewing_keeps_the_key_and_names_with_a_new_serial_and_expiry(tmp_path: Path, city: pki.Ca) -> None:
    path = pki.enrol_node(tmp_path / "n", "371102", "county", city.directory, days=10)
    old = pki.load_cert(path)
    new = pki.load_cert(pki.renew(path, city.directory, days=365))
    assert new.public_key() == old.public_key() and identity_of(new) == identity_of(old)
    assert new.serial_number != old.serial_number and new.not_valid_after_utc > old.not_valid_after_utc
    assert path.with_suffix(".crt.old").exists()


def test_a_request_must_name_a_real_node_and_a_ca_is_not_overwritten(tmp_path: Path, city: pki.Ca) -> None:
    with pytest.raises(pki.PkiError, match="township"):
        pki.request_node(tmp_path / "n", "371102", "township")
    with pytest.raises(pki.PkiError, match="exists"):
        pki.init_ca(city.directory, "371100")
    with pytest.raises(pki.PkiError, match="county"):
        pki.init_ca(tmp_path / "x", "371102")
