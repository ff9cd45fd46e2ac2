"""``govnet pki``: the operator's path from a new city to an enrolled, renewed and revoked node,
through the real command (click's runner, in this process: no node runs here)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from govnet.node.app.revocations import read_bundle
from govnet.ops.cli import main
from govnet.ops.pki import load_cert
from govnet.ops.processes import init_node


def govnet(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_intermediate_request_issue_renew_revoke(tmp_path: Path) -> None:
    ca, county_ca = tmp_path / "ca", tmp_path / "county-ca"
    assert govnet("pki", "init", str(ca), "--city", "371100")[0] == 0
    assert govnet("pki", "intermediate", str(county_ca), "--county", "371102", "--ca", str(ca))[0] == 0
    node = init_node(tmp_path / "town", "371102001", "township", "127.0.0.1:1")
    code, out = govnet("pki", "request", "--data-dir", str(node))
    assert code == 0 and "tls/node.csr" in out
    code, out = govnet("pki", "issue", str(node / "tls" / "node.csr"), "--ca", str(county_ca), "--days", "30")
    assert code == 0 and "issued node 371102001 (township)" in out
    first = load_cert(node / "tls" / "node.crt")
    code, out = govnet("pki", "renew", str(node / "tls" / "node.crt"), "--ca", str(county_ca))
    assert code == 0 and load_cert(node / "tls" / "node.crt").serial_number != first.serial_number
    code, out = govnet("pki", "show", str(node / "tls" / "node.crt"), "--json")
    assert code == 0 and '"name": "node 371102001 (township)"' in out
    code, out = govnet("pki", "revoke", "--node", "371102001", "--ca", str(county_ca))
    assert code == 0 and "revoked 2 certificate(s)" in out  # the first certificate and its renewal
    issuer, number, serials = read_bundle((county_ca / "revocations.crl").read_text(), load_cert(ca / "root.crt"))
    assert (issuer, number) == ("371102", 1) and first.serial_number in serials


def test_refusals_are_one_line(tmp_path: Path) -> None:
    ca, county_ca = tmp_path / "ca", tmp_path / "county-ca"
    govnet("pki", "init", str(ca), "--city", "371100")
    govnet("pki", "intermediate", str(county_ca), "--county", "371102", "--ca", str(ca))
    other = init_node(tmp_path / "other", "371103001", "township", "127.0.0.1:1")
    govnet("pki", "request", "--data-dir", str(other))
    code, out = govnet("pki", "issue", str(other / "tls" / "node.csr"), "--ca", str(county_ca))
    assert code == 1 and "outside the subtree of the CA of 371102" in out and len(out.strip().splitlines()) == 1
    code, out = govnet("pki", "init", str(ca), "--city", "371100")
    assert code == 1 and "a CA exists here already" in out
    code, out = govnet("pki", "revoke", "--ca", str(ca))
    assert code == 1 and "name a serial" in out
