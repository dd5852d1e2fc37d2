"""Tests for broker.config: defaults, shipped files, validation messages, derived names."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from aws_iot_mock.config import (
    CertificateResource,
    Config,
    DiagnosticsConfig,
    DomainConfiguration,
    ListenerConfig,
    PolicyResource,
    ResourcesConfig,
    ThingResource,
    load_config,
)
from aws_iot_mock.errors import ConfigError
from aws_iot_mock.tls.security_policies import DEFAULT_SECURITY_POLICY, SECURITY_POLICIES

ROOT = Path(__file__).parent.parent
SHIPPED_CONFIGS = sorted((ROOT / "config").rglob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------------


def test_none_gives_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.source == "<defaults>"
    assert config.account_id == "123456789012"
    assert config.region == "us-east-1"
    assert config.endpoint == "localhost"
    assert [(item.door, item.host, item.port, item.optional) for item in config.listeners] == [
        ("mqtt", "127.0.0.1", 8883, False),
        ("https", "127.0.0.1", 8443, False),
        ("alpn", "127.0.0.1", 443, True),
        ("api", "127.0.0.1", 9443, True),
    ]
    assert config.control_plane.strict_sigv4 is False
    assert config.tls.security_policy == DEFAULT_SECURITY_POLICY
    assert config.tls.require_sni is True
    assert config.tls.handshake_timeout == config.tls.connect_timeout == 10.0
    assert config.domain_configurations == ()
    assert config.certs_dir == Path("certs")
    assert config.state_dir == Path(".state")
    assert (config.logging.level, config.logging.file, config.logging.stdout) == (
        "INFO",
        None,
        True,
    )


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file_gives_defaults(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    config = load_config(path)
    assert config == dataclasses.replace(Config(), source=str(path))


def test_null_sections_mean_defaults(tmp_path: Path) -> None:
    # A section whose lines are all commented out parses as null.
    path = write(tmp_path, "listeners:\ntls:\nlogging:\nlimits:\ndomain_configurations:\n")
    assert load_config(path) == dataclasses.replace(Config(), source=str(path))


# --- shipped files -----------------------------------------------------------------------------


def test_shipped_configs_found() -> None:
    names = {p.relative_to(ROOT / "config").as_posix() for p in SHIPPED_CONFIGS}
    assert {
        "default.yaml",
        "examples/aws-shaped-endpoint.yaml",
        "examples/docker.yaml",
        "examples/domain-configurations.yaml",
        "examples/no-sni-allowed.yaml",
        "examples/demo-rig.yaml",
    } <= names


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    config = load_config(path)
    assert config.source == str(path)
    assert config.tls.security_policy in SECURITY_POLICIES


def test_default_yaml_equals_defaults() -> None:
    path = ROOT / "config" / "default.yaml"
    assert load_config(path) == dataclasses.replace(Config(), source=str(path))


def test_examples_content() -> None:
    examples = ROOT / "config" / "examples"
    aws = load_config(examples / "aws-shaped-endpoint.yaml")
    assert aws.endpoint == "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
    assert [(item.door, item.port) for item in aws.listeners] == [
        ("mqtt", 8883),
        ("https", 8443),
        ("alpn", 443),
    ]

    domains = load_config(examples / "domain-configurations.yaml")
    policies = {d.security_policy for d in domains.domain_configurations}
    assert len(domains.domain_configurations) == 2
    assert len(policies) == 2
    assert "IoTSecurityPolicy_TLS13_1_3_2022_10" in policies

    docker = load_config(examples / "docker.yaml")
    # The data endpoint's doors on every interface; the control plane (the health endpoint the
    # HEALTHCHECK asks) on the container's loopback only.
    assert {item.door: item.host for item in docker.listeners} == {
        "mqtt": "0.0.0.0",
        "https": "0.0.0.0",
        "alpn": "0.0.0.0",
        "api": "127.0.0.1",
    }
    assert docker.certs_dir == Path("/data/certs")
    assert docker.state_dir == Path("/data/state")
    assert docker.logging.file == Path("/data/logs/aws-iot-logs.jsonl")
    assert docker.endpoint == "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

    assert load_config(examples / "no-sni-allowed.yaml").tls.require_sni is False


# --- valid values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "attribute", "expected"),
    [
        ("account_id: 123456789012", "account_id", "123456789012"),
        ('account_id: "012345678901"', "account_id", "012345678901"),
        ("region: us-gov-west-1", "region", "us-gov-west-1"),
        ("region: cn-north-1", "region", "cn-north-1"),
        (
            "endpoint: A1-ats.iot.eu-west-1.amazonaws.com",
            "endpoint",
            "A1-ats.iot.eu-west-1.amazonaws.com",
        ),
        ("listeners: [{door: mqtt, port: 1, host: '::1'}]", "listeners.0.host", "::1"),
        ("listeners: [{door: mqtt, port: 1, host: 0.0.0.0}]", "listeners.0.host", "0.0.0.0"),
        ("listeners: [{door: mqtt, port: 1, host: my-host}]", "listeners.0.host", "my-host"),
        ("listeners: [{door: mqtt, port: 0}]", "listeners.0.port", 0),
        ("listeners: [{door: https, port: 65535}]", "listeners.0.port", 65535),
        ("listeners: [{door: https, port: 65535}]", "listeners.0.door", "https"),
        ("listeners: [{door: alpn, port: 443}]", "listeners.0.optional", False),
        ("listeners: [{door: alpn, port: 443, optional: true}]", "listeners.0.optional", True),
        ("listeners: [{door: api, port: 0}]", "listeners.0.host", "127.0.0.1"),
        ("limits: {outbound_buffer_bytes: 4096}", "limits.outbound_buffer_bytes", 4096),
        ("limits: {session_queue_max: 5}", "limits.session_queue_max", 5),
        ("tls: {handshake_timeout: 3600}", "tls.handshake_timeout", 3600.0),
        ("tls: {connect_timeout: 0.5}", "tls.connect_timeout", 0.5),
        ("tls: {require_sni: false}", "tls.require_sni", False),
        ("logging: {level: DISABLED}", "logging.level", "DISABLED"),
        ("logging: {stdout: false}", "logging.stdout", False),
    ],
)
def test_valid_values(tmp_path: Path, text: str, attribute: str, expected: object) -> None:
    value: object = load_config(write(tmp_path, text))
    for part in attribute.split("."):
        value = value[int(part)] if part.isdigit() else getattr(value, part)  # type: ignore[index]
    assert value == expected
    assert type(value) is type(expected)


def test_domain_policy_defaults_to_tls_policy(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        tls: {security_policy: IoTSecurityPolicy_TLS13_1_2_2022_10}
        domain_configurations:
          - domain_name: a.example.com
        """,
    )
    assert load_config(path).domain_configurations == (
        DomainConfiguration("a.example.com", "IoTSecurityPolicy_TLS13_1_2_2022_10"),
    )


# --- invalid values ----------------------------------------------------------------------------

BAD_INPUTS: list[tuple[str, str, str]] = [
    # (yaml text, key path expected in the message, other text expected in the message)
    ("acount_id: '123456789012'", "acount_id", "did you mean 'account_id'"),
    ("tls: {securty_policy: x}", "tls.securty_policy", "did you mean 'security_policy'"),
    ("logging: {lvl: INFO}", "logging.lvl", "unknown key"),
    (
        "domain_configurations: [{domain_name: a.example.com, policy: x}]",
        "domain_configurations[0].policy",
        "unknown key",
    ),
    ("zzzzzz: 1", "zzzzzz", "unknown key"),
    ("1: x", "top level", "keys must be strings"),
    ("listeners: {door: mqtt}", "listeners", "expected a list"),
    ("listeners: []", "listeners", "at least one listener"),
    ("listeners: [1, 2]", "listeners[0]", "expected a mapping"),
    ("listener: {port: 8883}", "listener", "replaced by 'listeners'"),
    ("listeners: [{port: 8883}]", "listeners[0].door", "required key is missing"),
    ("listeners: [{door: mqtt}]", "listeners[0].port", "required key is missing"),
    ("listeners: [{door: mqtts, port: 1}]", "listeners[0].door", "did you mean 'mqtt'"),
    ("listeners: [{door: mqtt, port: 1, prot: 2}]", "listeners[0].prot", "did you mean 'port'"),
    (
        "listeners: [{door: mqtt, port: 1}, {door: mqtt, port: 2}]",
        "listeners[1].door",
        "listed twice",
    ),
    ("listeners: [{door: alpn, port: 1, optional: 1}]", "listeners[0].optional", "true or false"),
    ("limits: {session_queue_max: 0}", "limits.session_queue_max", "out of range"),
    ("limits: {outbound_buffer_bytes: 10}", "limits.outbound_buffer_bytes", "out of range"),
    ("tls: true", "tls", "expected a mapping"),
    ("region: 5", "region", "expected a string"),
    ("endpoint: ''", "endpoint", "must not be empty"),
    ("listeners: [{door: mqtt, port: '8883'}]", "listeners[0].port", "expected an integer"),
    ("listeners: [{door: mqtt, port: 8883.0}]", "listeners[0].port", "expected an integer"),
    ("listeners: [{door: mqtt, port: true}]", "listeners[0].port", "got a boolean"),
    ("tls: {require_sni: 'yes please'}", "tls.require_sni", "expected true or false"),
    ("tls: {require_sni: 1}", "tls.require_sni", "expected true or false"),
    ("tls: {handshake_timeout: true}", "tls.handshake_timeout", "got a boolean"),
    ("tls: {handshake_timeout: '10'}", "tls.handshake_timeout", "number of seconds"),
    ("logging: {stdout: null}", "logging.stdout", "expected true or false"),
    ("logging: {file: 3}", "logging.file", "expected a string"),
    ("account_id: '12345678901'", "account_id", "12 digits"),
    ("account_id: '1234567890123'", "account_id", "12 digits"),
    ("account_id: '12345678901a'", "account_id", "12 digits"),
    ("account_id: 12345", "account_id", "quote it"),
    ("account_id: true", "account_id", "expected a string"),
    ("region: us-east", "region", "not an AWS region"),
    ("region: US-EAST-1", "region", "not an AWS region"),
    ("region: useast-1", "region", "not an AWS region"),
    ("endpoint: bad_name.example.com", "endpoint", "not a valid DNS name"),
    ("endpoint: -a.example.com", "endpoint", "not a valid DNS name"),
    ("endpoint: a..example.com", "endpoint", "not a valid DNS name"),
    ("endpoint: example.com.", "endpoint", "must not end with a dot"),
    (f"endpoint: {'a' * 64}.com", "endpoint", "not a valid DNS name"),
    (f"endpoint: {'.'.join(['a' * 63] * 4)}", "endpoint", "at most 253"),
    ("endpoint: 127.0.0.1", "endpoint", "RFC 6066"),
    ("endpoint: '::1'", "endpoint", "IP address"),
    ("endpoint: '127.1'", "endpoint", "all digits"),
    (
        "listeners: [{door: mqtt, port: 1, host: '[::1]'}]",
        "listeners[0].host",
        "not a bind address",
    ),
    ("listeners: [{door: mqtt, port: 1, host: ''}]", "listeners[0].host", "must not be empty"),
    ("listeners: [{door: mqtt, port: -1}]", "listeners[0].port", "out of range"),
    ("listeners: [{door: mqtt, port: 65536}]", "listeners[0].port", "out of range"),
    ("tls: {handshake_timeout: 0}", "tls.handshake_timeout", "more than 0"),
    ("tls: {handshake_timeout: -1.5}", "tls.handshake_timeout", "more than 0"),
    ("tls: {connect_timeout: 3601}", "tls.connect_timeout", "at most 3600"),
    ("tls: {connect_timeout: .nan}", "tls.connect_timeout", "more than 0"),
    ("tls: {connect_timeout: .inf}", "tls.connect_timeout", "at most 3600"),
    (
        "tls: {security_policy: Foo}",
        "tls.security_policy",
        "unknown TLS security policy 'Foo'; expected one of: ",
    ),
    (
        "tls: {security_policy: IoTSecurityPolicy_TLS13_1_3_2022_1}",
        "tls.security_policy",
        "did you mean 'IoTSecurityPolicy_TLS13_1_3_2022_10'",
    ),
    (
        "domain_configurations: [{domain_name: a.example.com, security_policy: Foo}]",
        "domain_configurations[0].security_policy",
        "unknown TLS security policy",
    ),
    ("logging: {level: WARNING}", "logging.level", "did you mean 'WARN'"),
    ("logging: {level: info}", "logging.level", "unknown log level"),
    ("logging: {level: false}", "logging.level", "expected a string"),
    (
        "domain_configurations: {domain_name: a.example.com}",
        "domain_configurations",
        "expected a list",
    ),
    ("domain_configurations: [a.example.com]", "domain_configurations[0]", "expected a mapping"),
    (
        "domain_configurations: [{security_policy: IoTSecurityPolicy_TLS12_1_2_2022_10}]",
        "domain_configurations[0].domain_name",
        "required key is missing",
    ),
    (
        "domain_configurations: [{domain_name: 10.0.0.1}]",
        "domain_configurations[0].domain_name",
        "IP address",
    ),
    (
        "domain_configurations: [{domain_name: a.example.com}, {domain_name: A.Example.COM}]",
        "domain_configurations[1].domain_name",
        "duplicate domain name",
    ),
    (
        "endpoint: iot.example.com\ndomain_configurations: [{domain_name: IOT.example.com}]",
        "domain_configurations[0].domain_name",
        "equals the endpoint",
    ),
    ("certs_dir: 5", "certs_dir", "expected a string"),
    ("state_dir: ''", "state_dir", "must not be empty"),
]


@pytest.mark.parametrize(("text", "key_path", "detail"), BAD_INPUTS)
def test_bad_input(tmp_path: Path, text: str, key_path: str, detail: str) -> None:
    path = write(tmp_path, text, name="bad-config.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert "bad-config.yaml" in message
    assert detail in message


def test_unknown_policy_lists_every_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "tls: {security_policy: Foo}"))
    assert all(name in str(info.value) for name in SECURITY_POLICIES)


def test_from_mapping_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: listeners\[0\]\.port: "):
        Config.from_mapping({"listeners": [{"door": "mqtt", "port": 99999}]}, source="x.yaml")
    with pytest.raises(ConfigError, match=r"^<mapping>: region: "):
        Config.from_mapping({"region": "mars"})
    assert Config.from_mapping(None) == dataclasses.replace(Config(), source="<mapping>")


# --- file-level errors -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="top level must be a mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "region: us-east-1\nlistener:\n  port: [8883\n  host: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line ")
    assert "invalid YAML" in message


def test_yaml_error_line_number_is_one_based(tmp_path: Path) -> None:
    path = write(tmp_path, "region: us-east-1\nendpoint: : :\n")
    with pytest.raises(ConfigError, match=r": line 2, column \d+: invalid YAML"):
        load_config(path)


def test_duplicate_yaml_key_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "region: us-east-1\nregion: eu-west-1\n")
    with pytest.raises(ConfigError, match=r"line 2, .*duplicate key 'region'") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_unsafe_yaml_tag_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "region: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(path)


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file") as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"region: \xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: config file is not valid UTF-8"):
        load_config(path)


# --- paths -------------------------------------------------------------------------------------


def test_paths_in_file_are_relative_to_the_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = write(
        sub,
        """
        certs_dir: my-certs
        state_dir: ../state
        logging: {file: logs/out.jsonl}
        """,
    )
    config = load_config(path)
    assert config.certs_dir == sub / "my-certs"
    assert config.state_dir == sub / "../state"
    assert config.logging.file == sub / "logs/out.jsonl"


def test_absolute_paths_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "certs_dir: /abs/certs\nlogging: {file: /abs/log.jsonl}\n")
    config = load_config(path)
    assert config.certs_dir == Path("/abs/certs")
    assert config.logging.file == Path("/abs/log.jsonl")


def test_default_paths_are_not_rebased(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "region: us-east-1\n"))
    assert config.certs_dir == Path("certs")
    assert config.state_dir == Path(".state")
    assert config.logging.file is None


def test_from_mapping_base_dir() -> None:
    data = {"certs_dir": "c"}
    assert Config.from_mapping(data).certs_dir == Path("c")
    assert Config.from_mapping(data, base_dir=Path("/etc/x")).certs_dir == Path("/etc/x/c")


# --- derived names and policies ----------------------------------------------------------------

DOMAINS = Config(
    endpoint="Abc-ats.iot.us-east-1.amazonaws.com",
    domain_configurations=(
        DomainConfiguration("Iot.Example.com", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
        DomainConfiguration("localhost", "IoTSecurityPolicy_TLS13_1_2_2022_10"),
    ),
)


def test_server_names() -> None:
    assert Config().server_names == ("localhost", "127.0.0.1", "::1")
    assert DOMAINS.server_names == (
        "Abc-ats.iot.us-east-1.amazonaws.com",
        "Iot.Example.com",
        "localhost",
        "127.0.0.1",
        "::1",
    )
    assert Config(endpoint="LOCALHOST").server_names == ("LOCALHOST", "127.0.0.1", "::1")


def test_accepted_sni_names() -> None:
    assert Config().accepted_sni_names == frozenset({"localhost"})
    assert DOMAINS.accepted_sni_names == frozenset(
        {"abc-ats.iot.us-east-1.amazonaws.com", "iot.example.com", "localhost"}
    )


@pytest.mark.parametrize(
    ("sni", "policy"),
    [
        (None, DEFAULT_SECURITY_POLICY),
        ("abc-ats.iot.us-east-1.amazonaws.com", DEFAULT_SECURITY_POLICY),
        ("unknown.example.com", DEFAULT_SECURITY_POLICY),
        ("iot.example.com", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
        ("IOT.EXAMPLE.COM", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
        ("LocalHost", "IoTSecurityPolicy_TLS13_1_2_2022_10"),
    ],
)
def test_security_policy_for(sni: str | None, policy: str) -> None:
    assert DOMAINS.security_policy_for(sni) == policy


# --- overrides ---------------------------------------------------------------------------------


def test_with_overrides_none_keeps_everything() -> None:
    assert DOMAINS.with_overrides() == DOMAINS


def test_with_overrides_applies() -> None:
    config = Config(source="f.yaml").with_overrides(
        certs_dir=Path("/tmp/c"),
        state_dir=Path("s"),
        host="::",
        ports={"mqtt": 0, "https": "off", "alpn": 4443, "api": 0},
        endpoint="dev.example.com",
    )
    assert config.certs_dir == Path("/tmp/c")
    assert config.state_dir == Path("s")
    assert config.listeners == (
        ListenerConfig("mqtt", 0, host="::"),
        # Asked for by flag, so no longer optional: failing to bind it is an error.
        ListenerConfig("alpn", 4443, host="::", optional=False),
        ListenerConfig("api", 0, host="::"),
    )
    assert config.endpoint == "dev.example.com"
    assert config.source == "f.yaml"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ports": {"mqtt": 70000}}, "--port: "),
        ({"ports": {"mqtt": -1}}, "--port: "),
        ({"ports": {"mqtt": True}}, "--port: "),
        ({"ports": {"https": "of"}}, "--https-port: "),
        ({"ports": {"alpn": 65536}}, "--alpn-port: "),
        ({"ports": {"smtp": 25}}, "--smtp-port: unknown door"),
        ({"host": "not a host"}, "--host: "),
        ({"host": ""}, "--host: "),
        ({"endpoint": "10.1.2.3"}, "--endpoint: "),
        ({"endpoint": "bad_name"}, "--endpoint: "),
        ({"endpoint": "IOT.example.com"}, "--endpoint: "),
    ],
)
def test_with_overrides_validates(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        DOMAINS.with_overrides(**overrides)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


# --- immutability ------------------------------------------------------------------------------


def test_frozen() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.endpoint = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listeners[0].port = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.tls.require_sni = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.logging.level = "DEBUG"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DOMAINS.domain_configurations[0].domain_name = "x"  # type: ignore[misc]
    assert isinstance(DOMAINS.domain_configurations, tuple)
    assert hash(DOMAINS) == hash(dataclasses.replace(DOMAINS))


def test_yaml_merge_keys_may_override(tmp_path: Path) -> None:
    text = (
        "domain_configurations:\n"
        "  - &d {domain_name: a.example.com}\n"
        "  - <<: *d\n"
        "    domain_name: b.example.com\n"
    )
    config = load_config(write(tmp_path, text))
    assert [d.domain_name for d in config.domain_configurations] == [
        "a.example.com",
        "b.example.com",
    ]


# --- diagnostics and resources -----------------------------------------------------------------


def test_diagnostics_and_resources_defaults() -> None:
    config = Config()
    assert config.diagnostics == DiagnosticsConfig(connack_on_deny=False)
    assert config.resources == ResourcesConfig(things=(), policies=(), certificates=())


def test_connack_on_deny(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "diagnostics: {connack_on_deny: true}"))
    assert config.diagnostics.connack_on_deny is True
    assert load_config(write(tmp_path, "diagnostics:\n")).diagnostics == DiagnosticsConfig()


def test_resources_parsed(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.json").write_text(
        '{"Version": "2012-10-17", "Statement": []}\n', encoding="utf-8"
    )
    path = write(
        tmp_path,
        """
        resources:
          things:
            - thing_name: sensor-1
              thing_type_name: thermometer
              attributes: {room: kitchen, floor: 3}
            - thing_name: bare
          policies:
            - policy_name: inline
              document:
                Version: 2012-10-17
                Statement: [{Effect: Allow, Action: "iot:Connect", Resource: "*"}]
            - policy_name: from-file
              document_file: policies/p.json
            - policy_name: as-text
              document: '{"Version": "2012-10-17", "Statement": []}'
          certificates:
            - certificate_file: certs/sensor-1.pem
              things: [sensor-1]
              policies: [inline, from-file]
            - certificate_file: /abs/other.pem
        """,
    )

    resources = load_config(path).resources

    assert resources.things == (
        ThingResource("sensor-1", "thermometer", {"room": "kitchen", "floor": "3"}),
        ThingResource("bare"),
    )
    inline, from_file, as_text = resources.policies
    assert inline.policy_name == "inline"
    # An unquoted Version parses as a YAML date; it is written back as the same text.
    assert json.loads(inline.document) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
    }
    assert from_file == PolicyResource("from-file", '{"Version": "2012-10-17", "Statement": []}\n')
    assert json.loads(as_text.document) == {"Version": "2012-10-17", "Statement": []}
    assert resources.certificates == (
        CertificateResource(
            tmp_path / "certs/sensor-1.pem", ("sensor-1",), ("inline", "from-file")
        ),
        CertificateResource(Path("/abs/other.pem")),
    )
    # Frozen and hashable, like the rest of the config.
    with pytest.raises(dataclasses.FrozenInstanceError):
        resources.things[0].thing_name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        resources.things[0].attributes["room"] = "x"  # type: ignore[index]
    assert hash(load_config(path)) == hash(load_config(path))


def test_null_resource_lists(tmp_path: Path) -> None:
    path = write(tmp_path, "resources:\n  things:\n  policies:\n  certificates:\n")
    assert load_config(path).resources == ResourcesConfig()


def test_demo_rig_example() -> None:
    path = ROOT / "config" / "examples" / "demo-rig.yaml"
    config = load_config(path)
    assert config.diagnostics.connack_on_deny is True
    assert [t.thing_name for t in config.resources.things] == ["sensor-1", "dashboard"]
    assert [p.policy_name for p in config.resources.policies] == [
        "sensor-policy",
        "dashboard-policy",
    ]
    for policy in config.resources.policies:
        document = json.loads(policy.document)
        assert document["Version"] == "2012-10-17"
        assert "*" not in json.dumps(document["Statement"][0]["Resource"]).split("/")[0]
    assert [c.things for c in config.resources.certificates] == [("sensor-1",), ("dashboard",)]
    # Certificate paths are relative to the config file: ../../certs is the repository's certs/.
    for certificate in config.resources.certificates:
        assert certificate.certificate_file.resolve().parent.parent == (ROOT / "certs").resolve()


BAD_RESOURCES: list[tuple[str, str, str]] = [
    ("diagnostics: {connack_on_deny: 'yes'}", "diagnostics.connack_on_deny", "true or false"),
    ("diagnostics: {connack: true}", "diagnostics.connack", "did you mean 'connack_on_deny'"),
    ("diagnostics: []", "diagnostics", "expected a mapping"),
    ("resources: []", "resources", "expected a mapping"),
    ("resources: {thing: []}", "resources.thing", "did you mean 'things'"),
    ("resources: {things: {thing_name: a}}", "resources.things", "expected a list"),
    ("resources: {things: [a]}", "resources.things[0]", "expected a mapping"),
    ("resources: {things: [{attributes: {}}]}", "resources.things[0].thing_name", "required"),
    ("resources: {things: [{thing_name: 'a b'}]}", "resources.things[0].thing_name", "'a b'"),
    ("resources: {things: [{thing_name: 5}]}", "resources.things[0].thing_name", "a string"),
    (
        "resources: {things: [{thing_name: a, name: b}]}",
        "resources.things[0].name",
        "unknown key",
    ),
    (
        "resources: {things: [{thing_name: a}, {thing_name: a}]}",
        "resources.things[1].thing_name",
        "duplicate thing name 'a'",
    ),
    (
        "resources: {things: [{thing_name: a, thing_type_name: 'x y'}]}",
        "resources.things[0].thing_type_name",
        "invalid name",
    ),
    (
        "resources: {things: [{thing_name: a, attributes: [room]}]}",
        "resources.things[0].attributes",
        "expected a mapping",
    ),
    (
        "resources: {things: [{thing_name: a, attributes: {room: living room}}]}",
        "resources.things[0].attributes.room",
        "invalid attribute value",
    ),
    (
        "resources: {things: [{thing_name: a, attributes: {lamp: true}}]}",
        "resources.things[0].attributes.lamp",
        "expected a string",
    ),
    (
        "resources: {things: [{thing_name: a, attributes: {on: x}}]}",
        "resources.things[0].attributes",
        "got a boolean (True); quote the name",
    ),
    (
        "resources: {things: [{thing_name: a, attributes: {'a b': c}}]}",
        "resources.things[0].attributes",
        "invalid attribute name 'a b'",
    ),
    ("resources: {policies: [{policy_name: p}]}", "resources.policies[0]", "exactly one of"),
    (
        "resources: {policies: [{policy_name: p, document: {}, document_file: x.json}]}",
        "resources.policies[0]",
        "exactly one of",
    ),
    (
        "resources: {policies: [{document: {Version: '2012-10-17'}}]}",
        "resources.policies[0].policy_name",
        "required",
    ),
    (
        "resources: {policies: [{policy_name: 'p/q', document: {Statement: []}}]}",
        "resources.policies[0].policy_name",
        "invalid policy name",
    ),
    (
        "resources: {policies: [{policy_name: p, document: [1]}]}",
        "resources.policies[0].document",
        "expected a policy document mapping",
    ),
    (
        "resources: {policies: [{policy_name: p, document: {}}]}",
        "resources.policies[0].document",
        "empty",
    ),
    (
        "resources: {policies: [{policy_name: p, document: '{nope'}]}",
        "resources.policies[0].document",
        "not valid JSON",
    ),
    (
        "resources: {policies: [{policy_name: p, document: {Version: .nan}}]}",
        "resources.policies[0].document",
        "no JSON form",
    ),
    (
        "resources: {policies: [{policy_name: p, document_file: missing.json}]}",
        "resources.policies[0].document_file",
        "file not found",
    ),
    (
        "resources: {policies: [{policy_name: p, document: {Statement: []}},"
        " {policy_name: p, document: {Statement: []}}]}",
        "resources.policies[1].policy_name",
        "duplicate policy name 'p'",
    ),
    (
        "resources: {certificates: [{things: [a]}]}",
        "resources.certificates[0].certificate_file",
        "required",
    ),
    (
        "resources: {certificates: [{certificate_file: ''}]}",
        "resources.certificates[0].certificate_file",
        "must not be empty",
    ),
    (
        "resources: {certificates: [{certificate_file: c.pem, things: a}]}",
        "resources.certificates[0].things",
        "expected a list",
    ),
    (
        "resources: {certificates: [{certificate_file: c.pem, things: [a, a]}]}",
        "resources.certificates[0].things",
        "listed twice",
    ),
    (
        "resources: {certificates: [{certificate_file: c.pem, policies: [ok, 'no/pe']}]}",
        "resources.certificates[0].policies",
        "item 1: invalid policy name",
    ),
    (
        "resources: {certificates: [{certificate_file: c.pem, status: ACTIVE}]}",
        "resources.certificates[0].status",
        "unknown key",
    ),
]


@pytest.mark.parametrize(("text", "key_path", "detail"), BAD_RESOURCES)
def test_bad_resources(tmp_path: Path, text: str, key_path: str, detail: str) -> None:
    path = write(tmp_path, text, name="bad-config.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key_path}: "), message
    assert detail in message


def test_document_file_that_is_not_a_json_object(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    path = write(tmp_path, "resources: {policies: [{policy_name: p, document_file: list.json}]}")
    with pytest.raises(
        ConfigError, match=r"resources\.policies\[0\]\.document_file: .*JSON object"
    ):
        load_config(path)
