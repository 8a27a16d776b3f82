"""gateway.yaml: tokens by digest, limits validated, a bad file refused naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from resontinex.app.gateway import GatewayConfigError, load_gateway_config, new_token, token_digest
from resontinex.app.settings import GATEWAY_FILE
from resontinex.config import PACKAGED_DIR


def test_a_token_writes_its_tenant_only_and_nothing_else_authenticates(tmp_path: Path) -> None:
    acme, globex = new_token(), new_token()
    assert acme != globex
    path = tmp_path / "gateway.yaml"
    path.write_text(f"tokens:\n  - {{tenant: acme, sha256: {token_digest(acme)}}}\n"
                    f"  - {{tenant: globex, sha256: {token_digest(globex)}, name: billing}}\n")
    cfg = load_gateway_config(path)
    assert cfg.tenant_of(f"Bearer {acme}") == "acme" and cfg.tenant_of(f"bearer {globex}") == "globex"
    for header in (None, "", "Bearer", f"Basic {acme}", f"Bearer {acme}x", acme, f"Bearer {token_digest(acme)}"):
        assert cfg.tenant_of(header) is None, header


def test_the_packaged_file_and_a_missing_one_give_the_defaults_with_no_token(tmp_path: Path) -> None:
    packaged = load_gateway_config(PACKAGED_DIR / GATEWAY_FILE)
    assert packaged == load_gateway_config(tmp_path / "absent.yaml")
    assert not packaged.tenants and packaged.max_body_bytes == 524_288 and packaged.decide_timeout_s == 5.0


@pytest.mark.parametrize("text, says", [
    ("tokens: [{tenant: acme, sha256: abc}]", "tokens.0.sha256"),
    ("tokens: [{tenant: acme}]", "tokens.0.sha256: Field required"),
    (f"tokens: [{{tenant: acme, sha256: {'a' * 64}}}, {{tenant: globex, sha256: {'a' * 64}}}]", "listed twice"),
    ("max_body_bytes: 100", "max_body_bytes"),
    ("decide_timeout_s: 40\nmax_decide_timeout_s: 30", "decide_timeout_s: above max_decide_timeout_s"),
    ("token: []", "token: Extra inputs are not permitted"),
    ("tokens: [", "gateway.yaml"),
    ("- a list", "(top level)"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(GatewayConfigError) as caught:
        load_gateway_config(path)
    assert str(path) in str(caught.value) and says in str(caught.value)
