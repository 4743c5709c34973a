"""The API's cold path stays light: Pillow is loaded only by the resize task, never by the
API, even after it has accepted a cover over HTTP (checked in a fresh interpreter serving
the app through the local gateway)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import b64, eventually, jpeg_bytes, unique_author

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, os, sys
import app
loaded_at_import = "PIL" in sys.modules
import requests
from devtools.gateway.server import Gateway, serving
request = json.load(open(sys.argv[1]))
with serving(Gateway(app.app, os.environ["STAGE"])) as url:
    created = requests.post(
        url + "/books",
        headers={"Authorization": "Bearer " + request["key"], "Content-Type": "application/json"},
        data=json.dumps(request["book"]),
        timeout=120,
    )
    fetched = requests.get(url + "/books/" + created.json()["book"]["id"], timeout=120)
print(json.dumps({
    "loaded_at_import": loaded_at_import,
    "loaded_after_requests": "PIL" in sys.modules,
    "created": created.status_code,
    "fetched": fetched.status_code,
    "book": created.json()["book"],
}))
"""


def test_api_never_imports_pillow(tmp_path: Path, keys: dict[str, str], workers: Any, api: Any) -> None:
    request = tmp_path / "request.json"
    book = {"title": "Light start", "authors": [unique_author()], "cover": b64(jpeg_bytes(900, 600))}
    request.write_text(json.dumps({"key": keys["alice"], "book": book}))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(request)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["created"], result["fetched"]) == (202, 200)
    assert result["book"]["cover_status"] == "pending"
    assert result["loaded_at_import"] is False, "import app must not load Pillow"
    assert result["loaded_after_requests"] is False, "accepting a cover must not load Pillow"
    # The cover it accepted is real work for the media worker, which does load Pillow.
    book_id = result["book"]["id"]
    eventually(lambda: api.get(f"/books/{book_id}")[1]["cover_status"] == "ready", what="cover resized")


# What `import app` (every function's init) must leave for first use: each is used by some
# routes or functions only (app.py names them through chalicelib/platform/lazy.py).
LAZY = {
    "chalicelib.api.openapi": "the OpenAPI document (GET /openapi.json)",
    "chalicelib.dashboard.views": "the dashboard",
    "chalicelib.ops.queues": "the queue views",
    "chalicelib.tasks.worker": "the SQS consumer (workers only)",
    "aws_lambda_powertools.utilities.batch": "Powertools' batch processing (workers only)",
    "email_validator": "address validation (subscriber routes only)",
    "boto3": "boto3's sessions (clients are made at first use)",
    "PIL": "Pillow (the resize task only)",
    "pyvips": "libvips (the resize task only)",
    "chalicelib.covers.images": "the thumbnailer (the resize task only)",
    "chalicelib.mail.fanout": "the mail fan-out, a task implementation (default worker only)",
    "chalicelib.mail.bulk": "bulk mail (default worker only)",
    "chalicelib.tasks.reconcile": "the dead-letter reconciler (its schedule only)",
    "chalicelib.tasks.executor": "running a task (workers, and eager mode at the first send)",
}


def test_import_app_loads_only_what_every_function_needs(endpoint: str) -> None:
    code = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {name: why for name, why in LAZY.items() if name in loaded} == {}
    # The tasks are declared all the same: the API sends the fan-out's by name.
    code = (
        "import json, app; from chalicelib.tasks.registry import registered_tasks as r; print(json.dumps(sorted(r())))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {"books.notify_subscribers", "mail.fanout_page", "mail.resend", "covers.resize"} <= set(
        json.loads(done.stdout.strip().splitlines()[-1])
    )
    # ... and each is there when its path runs: a route through the lazy proxy.
    code = (
        "import json, sys, app\n"
        "from chalice.test import Client\n"
        "with Client(app.app) as http:\n"
        "    status = http.http.get('/openapi.json').status_code\n"
        "print(json.dumps([status, 'chalicelib.api.openapi' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, True]


@pytest.mark.unit
def test_a_lazy_module_read_by_two_threads_at_once_waits_for_the_import(tmp_path: Path, monkeypatch: Any) -> None:
    """GIVEN a module still being imported by one thread WHEN another reads it through its proxy THEN
    it waits for the whole module (the local runner's two workers once got a half-made
    `chalicelib.tasks.worker`: "partially initialized module ... has no attribute 'consume'")."""
    import sys
    import threading
    import time

    from chalicelib.platform.lazy import lazy

    (tmp_path / "slow_lazy_probe.py").write_text("import time\ntime.sleep(0.6)\nvalue = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_lazy_probe", raising=False)
    proxy = lazy("slow_lazy_probe")
    answers: dict[str, Any] = {}

    def read(who: str) -> None:
        try:
            answers[who] = proxy.value
        except AttributeError as exc:
            answers[who] = exc

    first = threading.Thread(target=read, args=("first",))
    first.start()
    time.sleep(0.2)  # the first thread is inside the module's import now
    read("second")
    first.join()
    assert answers == {"first": 42, "second": 42}
