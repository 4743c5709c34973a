"""The test session: a real AWS endpoint over HTTP, the stage's resources, API keys and workers.

The tests are sorted by kind (docs/LOCAL.md, "Tests and the emulator"): `unit/` (pure logic over in-memory stores: no
AWS endpoint is started for them, and they pass with AWS unreachable), `functional/` (the app
in this process on the emulator), `integration/` (make run's parts as their own processes, a
browser), `tooling/` (the emulator, the local runtime, the deploy and packaging tools) and
`deployed/` (its own conftest, `make test-deployed` only).

Unless AWS_ENDPOINT_URL is set (e.g. LocalStack on :4566), each pytest process (each xdist
worker) starts its own embedded emulator in a child process. Each process also gets its own
resource prefix (tables, queues, bucket, secret, parameter), so xdist workers never share
state, whichever endpoint serves them, and runs never collide.

The endpoint starts lazily: the first test that needs AWS (through a fixture such as `api`,
`aws`, `settings`, `workers`, `faults` or `mailbox`, or simply by not being marked `unit`)
starts it and creates the resources; a run of only `unit` tests starts nothing
(`pytest tests/unit`, `pytest -m unit`). The application reads its settings lazily (on first
use, never at import), so the environment set here only has to be in place before a test runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from helpers import Api, Mailbox, is_emulator
from session_env import TEST_ENV

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_EMULATOR: dict[str, Any] = {}


# The deployed stack's suite has its own conftest and runs under `make test-deployed` only.
collect_ignore = ["deployed"]
UNIT_DIR = Path(__file__).resolve().parent / "unit"
# Set when this session chose the endpoint itself (its own emulator): xdist workers inherit the
# controller's environment, and each one then picks an emulator of its own instead of sharing it.
OWN_ENDPOINT = "BOOKSHELF_TEST_OWN_ENDPOINT"


def pytest_configure(config: pytest.Config) -> None:
    from devtools.backends.localstack import SHARED_EMULATOR

    for key, value in TEST_ENV.items():
        os.environ.setdefault(key, value)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ["RESOURCE_PREFIX"] = f"bookshelf-test-{worker}-{uuid.uuid4().hex[:8]}"
    if os.environ.get(OWN_ENDPOINT) or not os.environ.get("AWS_ENDPOINT_URL"):
        os.environ["AWS_ENDPOINT_URL"] = _reserve_emulator()
        os.environ[OWN_ENDPOINT] = "1"
    elif (shared := os.environ.get(SHARED_EMULATOR)) and worker != "main":
        # Against LocalStack (make test-localstack -n N): LocalStack is shared (each worker has its
        # own resources), but the services the emulator serves get an emulator per worker, since its
        # fault injection and SES mailbox are the whole process's.
        own = _reserve_emulator()
        for key, value in list(os.environ.items()):
            if key.startswith("AWS_ENDPOINT_URL_") and value == shared:
                os.environ[key] = own
        os.environ[SHARED_EMULATOR] = own


def _reserve_emulator() -> str:
    """A free port for this process's own emulator, which listens there once a test needs it."""
    from devtools.emulator.process import free_port

    port = free_port()
    _EMULATOR.update(port=port, url=f"http://127.0.0.1:{port}")
    return str(_EMULATOR["url"])


def pytest_sessionstart(session: pytest.Session) -> None:
    """The random order's seed, printed even under -q (pytest-randomly's own header is not)."""
    seed = getattr(session.config.option, "randomly_seed", None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if isinstance(seed, int) and reporter is not None and not hasattr(session.config, "workerinput"):
        reporter.write_line(f"random order: replay it with -p randomly --randomly-seed={seed}")


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test under tests/unit is a `unit` test (no endpoint started), whatever its file says."""
    if UNIT_DIR in Path(str(item.path)).parents:
        item.add_marker(pytest.mark.unit)


def _start_aws() -> str:
    """Start the embedded emulator (unless an endpoint was given) and create the stage's resources, once."""
    if "ready" in _EMULATOR:
        return os.environ["AWS_ENDPOINT_URL"]
    if "port" in _EMULATOR:
        from devtools.emulator.process import start_process

        log = tempfile.NamedTemporaryFile(prefix="emulator-", suffix=".log", delete=False)
        proc, endpoint = start_process(port=_EMULATOR["port"], log=log)
        _EMULATOR.update(proc=proc, log=log.name, log_file=log)
        if proc.poll() is not None or endpoint != _EMULATOR["url"]:
            raise RuntimeError(f"the emulator could not listen on {_EMULATOR['url']}; see {log.name}")
    from infra.local import create_all

    create_all()
    _EMULATOR["ready"] = True
    return os.environ["AWS_ENDPOINT_URL"]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Every test has the AWS endpoint except those marked `unit` (pure logic), before any of its fixtures."""
    if item.get_closest_marker("unit") is None:
        _start_aws()


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _EMULATOR.get("proc")
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)
        _EMULATOR["log_file"].close()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _settings_follow_the_environment(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that changed the environment leaves the settings as the restored environment says.

    Autouse, so set up first and torn down last: after monkeypatch has put the variables back.
    A test that cleared the cache itself before that (or not at all) left its values cached for
    the tests after it in the same worker, and a thread of the worker (the runner, the gateway)
    reading in between kept them too: one such leak sent a worker's calls to another prefix.
    """
    yield
    if "monkeypatch" in request.fixturenames:
        from chalicelib.platform.config import get_settings

        get_settings.cache_clear()


@pytest.fixture(scope="session")
def endpoint() -> str:
    """The AWS endpoint, started (with the stage's resources) on first use."""
    return _start_aws()


@pytest.fixture(scope="session")
def app_module(endpoint: str) -> Any:
    import app

    return app


@pytest.fixture(scope="session")
def keys(endpoint: str) -> dict[str, str]:
    from infra.local import create_api_key

    return {
        "alice": create_api_key("alice"),
        "bob": create_api_key("bob"),
        "admin": create_api_key("ops", admin=True),
    }


@pytest.fixture(scope="session")
def chalice_client(app_module: Any) -> Iterator[Any]:
    """Chalice's in-process client, only for invoking the SQS and scheduled functions directly."""
    from chalice.test import Client

    with Client(app_module.app) as client:
        yield client


@pytest.fixture(scope="session")
def gateway(app_module: Any) -> Any:
    """The local API Gateway in front of the app (its authorizer cache is per gateway)."""
    from devtools.gateway.server import Gateway

    return Gateway(app_module.app, os.environ["STAGE"])


@pytest.fixture(scope="session")
def gateway_url(gateway: Any) -> Iterator[str]:
    """The gateway over real HTTP, served from a thread of this process, so tasks registered by
    tests and the in-process `workers` share the test's modules."""
    from devtools.gateway.server import serving

    with serving(gateway) as url:
        yield url


@pytest.fixture(scope="session")
def api(gateway_url: str, keys: dict[str, str]) -> Api:
    return Api(gateway_url, keys)


class Workers:
    """Both SQS consumers (the local event source runner), which a test may pause."""

    def __init__(self, app_module: Any) -> None:
        self.app_module = app_module
        self.runner: Any = None

    def resume(self) -> None:
        from devtools.runtime.runner import EventSourceRunner

        if self.runner is None:
            self.runner = EventSourceRunner(self.app_module, wait_seconds=1).start()

    def deleted(self, *message_ids: str) -> bool:
        """Whether the running consumers deleted every one of these messages (as the mapping would)."""
        if self.runner is None:
            return False
        gone = {i for poller in self.runner.pollers.values() for i in poller.deleted_ids}
        return set(message_ids) <= gone

    def pause(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None


@pytest.fixture(scope="session")
def _workers(app_module: Any) -> Iterator[Workers]:
    workers = Workers(app_module)
    yield workers
    workers.pause()


@pytest.fixture
def workers(_workers: Workers) -> Workers:
    """The consumers, running."""
    _workers.resume()
    return _workers


@pytest.fixture
def paused_workers(_workers: Workers) -> Iterator[Workers]:
    """No consumer polls during the test (they resume afterwards if they ran before)."""
    was_running = _workers.runner is not None
    _workers.pause()
    yield _workers
    if was_running:
        _workers.resume()


@pytest.fixture(scope="session")
def aws(endpoint: str) -> Callable[[str], Any]:
    from chalicelib.platform.aws import client

    return client


@pytest.fixture(scope="session")
def settings(endpoint: str) -> Any:
    from chalicelib.platform.config import get_settings

    return get_settings()


_is_emulator = is_emulator  # the name test_deploy_emulator imports


class ServiceFaults:
    """Fault injection at the embedded emulator, for the services it serves.

    Each service may have its own endpoint (AWS_ENDPOINT_URL_<SERVICE>, e.g. DynamoDB on the
    emulator and the rest on LocalStack): a rule for a service served elsewhere skips the test.
    """

    def __init__(self) -> None:
        from chalicelib.platform.aws import client

        self._client = client
        self._emulators: dict[str, bool] = {}

    def _endpoint(self, service: str) -> str:
        endpoint = str(self._client(service).meta.endpoint_url)
        if endpoint not in self._emulators:
            self._emulators[endpoint] = _is_emulator(endpoint)
        return endpoint

    def _fault_client(self, service: str) -> Any:
        from devtools.emulator.faults import FaultClient

        endpoint = self._endpoint(service)
        if not self._emulators[endpoint]:
            pytest.skip(f"fault injection for {service} needs the embedded emulator; {service} is served by {endpoint}")
        return FaultClient(endpoint)

    def _all(self) -> list[Any]:
        from devtools.emulator.faults import FaultClient

        return [FaultClient(endpoint) for endpoint, emulated in self._emulators.items() if emulated]

    def add(self, **spec: Any) -> dict[str, Any]:
        return cast("dict[str, Any]", self._fault_client(str(spec["service"])).add(**spec))

    def clear(self) -> None:
        for fault_client in self._all():
            fault_client.clear()

    def listing(self) -> list[dict[str, Any]]:
        return [fault for fault_client in self._all() for fault in fault_client.listing()]


def _forget_metrics_source() -> None:
    from chalicelib.dashboard import outcome_metrics, queue_metrics
    from chalicelib.ops import lambda_metrics
    from chalicelib.platform.config import get_settings

    get_settings.cache_clear()
    for cached in (lambda_metrics._cache, queue_metrics._cache, outcome_metrics._cache):
        cached.clear()


@pytest.fixture
def cloudwatch_source(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> Iterator[None]:
    """The app in this process reads its charts, stats and Workers panel from CloudWatch, as deployed."""
    monkeypatch.setenv("WORKER_METRICS", "cloudwatch")
    _forget_metrics_source()
    yield
    monkeypatch.delenv("WORKER_METRICS")
    _forget_metrics_source()


@pytest.fixture
def faults(endpoint: str) -> Iterator[ServiceFaults]:
    """Fault injection at the embedded emulator (a test skips for a service served by LocalStack)."""
    client = ServiceFaults()
    for service in ("dynamodb", "sqs", "s3", "ses"):
        client._endpoint(service)
    client.clear()
    yield client
    client.clear()


@pytest.fixture(scope="session")
def mailbox(endpoint: str) -> Mailbox:
    """The mail recorded where SES v2 (the app's sending API) is served: it may have its own endpoint."""
    from chalicelib.platform.aws import client

    return Mailbox(str(client("sesv2").meta.endpoint_url))
