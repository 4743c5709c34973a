"""The Chalice app served over real HTTP inside the test process, for the dashboard's browser tests.

In-process (Chalice's own local server on a thread, on a free port), so the app shares the
test's emulator, settings and registered test tasks. One server per process: Chalice's
local server swaps the app's class, which must happen once.
"""

from __future__ import annotations

import threading
from typing import Any

_SERVER: dict[str, Any] = {}


def serve(app_module: Any) -> str:
    """The base URL of the app served on 127.0.0.1 (started on first use, stopped by `stop`)."""
    if "url" not in _SERVER:
        from chalice.config import Config
        from chalice.local import create_local_server

        from devtools.emulator import free_port

        port = free_port()
        config = Config.create(chalice_stage="local", app_name=app_module.app.app_name, chalice_app=app_module.app)
        server = create_local_server(app_module.app, config, "127.0.0.1", port)
        thread = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
        thread.start()
        _SERVER.update(url=f"http://127.0.0.1:{port}", server=server, thread=thread)
    return str(_SERVER["url"])


def stop() -> None:
    """Stop the server if it runs."""
    server = _SERVER.pop("server", None)
    if server is not None:
        server.shutdown()
        _SERVER.clear()
