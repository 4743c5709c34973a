"""How `make test-localstack` starts LocalStack and routes each service (pure logic, no LocalStack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.backends import localstack

pytestmark = pytest.mark.unit  # pure logic: no AWS endpoint is started for these tests


def test_each_service_goes_to_its_endpoint() -> None:
    env = localstack.environment("http://127.0.0.1:1111", "http://127.0.0.1:2222")
    assert env == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1111",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:2222",
        "AWS_ENDPOINT_URL_SESV2": "http://127.0.0.1:2222",
        "AWS_ENDPOINT_URL_SES": "http://127.0.0.1:2222",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:2222",
        "AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:2222",
        "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:2222",
        # so that each xdist worker puts an emulator of its own in its place (tests/conftest.py)
        "BOOKSHELF_SHARED_EMULATOR": "http://127.0.0.1:2222",
    }
    assert not set(localstack.LOCALSTACK_SERVICES) & set(localstack.EMULATED_SERVICES)


def test_clients_and_models_honour_per_service_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """No explicit endpoint_url anywhere, so botocore's AWS_ENDPOINT_URL_<SERVICE> applies."""
    from chalicelib.platform.aws import client
    from chalicelib.tables import ALL_MODELS

    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:3333")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:4444")
    fresh = client.__wrapped__  # bypass the process-wide cache
    assert fresh("sqs").meta.endpoint_url == "http://127.0.0.1:3333"
    assert fresh("logs").meta.endpoint_url == "http://127.0.0.1:4444"  # the variable names the service id
    assert fresh("s3").meta.endpoint_url != "http://127.0.0.1:3333"
    assert all(model.Meta.host is None for model in ALL_MODELS)


def test_localstack_starts_offline_on_loopback_without_the_callers_aws_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCALSTACK_AUTH_TOKEN", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere")
    env = localstack.localstack_environment(4567, tmp_path)
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4567"
    assert env["SERVICES"] == "s3,sqs,ssm,secretsmanager,sts,apigateway"
    assert (env["PERSISTENCE"], env["DISABLE_EVENTS"], env["SKIP_SSL_CERT_DOWNLOAD"]) == ("0", "1", "1")
    assert env["FILESYSTEM_ROOT"] == str(tmp_path / "filesystem")
    assert "LOCALSTACK_AUTH_TOKEN" not in env and "AWS_ENDPOINT_URL" not in env


def test_a_missing_python_for_localstack_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOCALSTACK_PYTHON", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    with pytest.raises(localstack.LocalStackError, match=r"Python >= 3\.12"):
        localstack.find_python()


def test_transactions_honour_the_dynamodb_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction goes where the models go (DynamoDB on the emulator under make test-localstack)."""
    from chalicelib.platform.transactions import _connection

    _connection.cache_clear()  # one connection per process: build it under this environment
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:3333")
    try:
        assert _connection().client.meta.endpoint_url == "http://127.0.0.1:3333"
    finally:
        _connection.cache_clear()  # later transactions build theirs under the session's endpoints


def test_the_compose_file_starts_without_an_account() -> None:
    """LocalStack's images since 2026-03-23 refuse to start without an account's token: the compose
    file pins the last one that does not (4.14.0), and offers MiniStack beside it."""
    import re

    import yaml

    root = Path(__file__).resolve().parents[2]
    services = yaml.safe_load((root / "localstack-compose.yml").read_text())["services"]
    image, tag = services["localstack"]["image"].split(":")
    assert image == "localstack/localstack"
    assert tuple(int(p) for p in tag.split(".")) <= (4, 14, 0)  # 2026.x tags need LOCALSTACK_AUTH_TOKEN
    ministack = services["ministack"]
    assert ministack["profiles"] == ["ministack"]  # opt-in: `--profile ministack`
    # The glibc image: its Python runs the functions, and the zip's wheels are manylinux (not musl).
    image, tag = ministack["image"].split(":")
    assert image == "ministackorg/ministack" and re.fullmatch(r"\d+\.\d+\.\d+-full", tag)
    pin = root / "requirements-ministack.txt"
    if pin.exists():  # the same release as `make test-deployed`
        assert f"=={tag.removesuffix('-full')}" in pin.read_text()
    for service in services.values():  # loopback only
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
