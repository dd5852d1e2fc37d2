"""What ``serve`` imports before its first handshake: not cryptography, yaml or the registry.

Importing ``cryptography.x509`` took a third of the time from process start to the first
accepted handshake, and PyYAML and the registry package a tenth each. Everything ``serve`` does
before then (the CLI, the server module, the certs directory's check, reading the config file,
the registry's CA, domain and certificate lookups, the TLS contexts) works from PEM files,
SHA-256 digests, a cached config document and a read-only view of the registry database. Each
check runs in a fresh interpreter, so that the modules this test process imported do not hide an
import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aws_iot_mock.certs_dir import CertsDirectory
from aws_iot_mock.registry import CertificateRegistry
from tests.serve_child import REPO_ROOT

NAMES = ["localhost", "127.0.0.1", "::1"]

# The steps of Broker.start before the data doors listen, and the door's registry lookup.
_PATH_TO_FIRST_HANDSHAKE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import aws_iot_mock.cli
    import aws_iot_mock.server.app
    from aws_iot_mock.certs_dir import CertsDirectory
    from aws_iot_mock.config import load_config
    from aws_iot_mock.server.registry_view import RegistryView
    from aws_iot_mock.tls.context import ServerCredentials, create_server_context
    from aws_iot_mock.tls.security_policies import DEFAULT_SECURITY_POLICY, get_security_policy

    certs_dir, state_dir, config_file = (Path(arg) for arg in sys.argv[1:4])
    if config_file.name:
        load_config(config_file)
    certs = CertsDirectory(certs_dir)
    reissued = certs.ensure_server_certificates(json.loads(sys.argv[4]))
    view = RegistryView.open(state_dir)
    view.domain_configurations()
    cas = view.active_ca_certificates_pem()
    view.certificate_status("0" * 64)
    create_server_context(
        get_security_policy(DEFAULT_SECURITY_POLICY),
        8883,
        ServerCredentials(
            certs.server_rsa_cert_path,
            certs.server_rsa_key_path,
            certs.server_ecdsa_cert_path,
            certs.server_ecdsa_key_path,
            certs.root_ca_path,
        ),
        extra_client_cas=cas,
    )
    # random (and secrets, which imports it) costs a few milliseconds; os.urandom serves.
    # config_sections: the classes of config sections the file does not have.
    heavy = {"cryptography", "yaml", "aws_iot_mock.registry", "random"}
    heavy.add("aws_iot_mock.config_sections")
    imported = sorted(name for name in heavy if name in sys.modules)
    print(json.dumps({"reissued": reissued, "imported": imported}))
    """
)


def _run(certs: CertsDirectory, state_dir: Path, config_file: str = "") -> dict[str, object]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _PATH_TO_FIRST_HANDSHAKE,
            str(certs.path),
            str(state_dir),
            config_file,
            json.dumps(NAMES),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


@pytest.fixture
def certs(tmp_path: Path) -> CertsDirectory:
    certs = CertsDirectory(tmp_path / "certs")
    certs.ensure_server_certificates(NAMES)  # the full check, recorded in .checked.json
    # The registry database exists (serve reads it through server.registry_view until the
    # registry package is loaded).
    CertificateRegistry.open(tmp_path / "state", region="us-east-1", account_id="1" * 12).close()
    return certs


def test_checked_certificates_start_without_cryptography(
    certs: CertsDirectory, tmp_path: Path
) -> None:
    assert _run(certs, tmp_path / "state") == {"reissued": False, "imported": []}


def test_certificates_changed_since_the_check_are_parsed_again(
    certs: CertsDirectory, tmp_path: Path
) -> None:
    # The twin: a server key that changed since the recorded check is parsed (and found not to
    # match its certificate: both server certificates are issued again).
    certs.server_rsa_key_path.write_bytes(certs.server_ecdsa_key_path.read_bytes())

    answer = _run(certs, tmp_path / "state")
    # (cryptography imports random itself when it issues certificates)
    assert answer == {"reissued": True, "imported": ["cryptography", "random"]}
    # Recorded again: the next start parses nothing.
    assert _run(certs, tmp_path / "state") == {"reissued": False, "imported": []}


def test_a_yaml_config_is_parsed_once_then_read_from_the_cache(
    certs: CertsDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # empty: a first parse
    config = tmp_path / "config.yaml"
    config.write_text("region: eu-west-1\n")
    state = tmp_path / "state"

    assert _run(certs, state, str(config)) == {"reissued": False, "imported": ["yaml"]}
    assert _run(certs, state, str(config)) == {"reissued": False, "imported": []}
    # The twin: other text is parsed.
    config.write_text("region: eu-west-2\n")
    assert _run(certs, state, str(config)) == {"reissued": False, "imported": ["yaml"]}


def test_a_config_section_class_is_defined_when_the_file_has_that_section(
    certs: CertsDirectory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The twin of the runs above (no such section: config_sections stays unimported).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "config.yaml"
    config.write_text("resources:\n  things:\n    - thing_name: sensor-1\n")
    state = tmp_path / "state"

    assert _run(certs, state, str(config)) == {
        "reissued": False,
        "imported": ["aws_iot_mock.config_sections", "yaml"],
    }
    # From the cache: no YAML, the section's class still defined.
    assert _run(certs, state, str(config)) == {
        "reissued": False,
        "imported": ["aws_iot_mock.config_sections"],
    }


_SERVE_PARSER = """
import argparse, json, sys
from aws_iot_mock.cli import _build_parser

parser = _build_parser("serve")
parser.parse_args(["serve", "--port", "0"])
serve = parser._subparsers._group_actions[0].choices["serve"]
ours = serve.format_help()
imported = "shutil" in sys.modules
serve.formatter_class = argparse.HelpFormatter  # argparse's own (it imports shutil)
print(json.dumps({"shutil": imported, "ours": ours, "argparse": serve.format_help()}))
"""


@pytest.mark.parametrize("columns", ["60", "200", ""])
def test_the_serve_parser_takes_the_terminal_width_without_shutil(columns: str) -> None:
    # argparse's own formatter imports shutil (and zlib, bz2, lzma) for the width; ours reads
    # it as shutil.get_terminal_size does ($COLUMNS, else the terminal's, else 80).
    env = {**os.environ, "COLUMNS": columns}
    result = subprocess.run(
        [sys.executable, "-c", _SERVE_PARSER],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    answer = json.loads(result.stdout)
    assert answer["shutil"] is False
    assert answer["ours"] == answer["argparse"]
