"""Setting defaults are written once, in chalicelib/platform/config.py (DEFAULTS).

`.chalice/config.json` may repeat a default at its top level only with the same value and may
override known settings per stage; the test session sets only what differs. Before, the
default queue's visibility timeout was 360 s in config.py and 180 s in config.json, and the
tests repeated six defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_chalice_config_agrees_with_the_settings_schema() -> None:
    from infra.stage import default_drift

    assert default_drift() == []


def test_a_contradicting_default_or_an_unknown_setting_is_drift() -> None:
    from chalicelib.platform.config import DEFAULTS
    from infra.stage import default_drift

    config = {
        "environment_variables": {"DEFAULT_VISIBILITY_TIMEOUT": str(int(DEFAULTS["DEFAULT_VISIBILITY_TIMEOUT"]) * 2)},
        "stages": {"dev": {"environment_variables": {"MEDIA_VISIBILTY_TIMEOUT": "60", "MAIL_TABLE": "mail"}}},
    }
    problems = default_drift(config)
    assert len(problems) == 2
    assert "DEFAULT_VISIBILITY_TIMEOUT" in problems[0] and "MEDIA_VISIBILTY_TIMEOUT" in problems[1]
    assert default_drift({"environment_variables": {"SNAPSTART": "false"}, "stages": {}}) == []


def test_the_test_session_sets_no_default_again() -> None:
    from session_env import TEST_ENV

    from chalicelib.platform.config import DEFAULTS

    assert {k: v for k, v in TEST_ENV.items() if DEFAULTS.get(k) == v} == {}


def test_packaging_and_deploying_refuse_drift(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from infra import stage
    from infra.functions import use_stage

    config = json.loads((stage.ROOT / ".chalice" / "config.json").read_text())
    config["environment_variables"]["MEDIA_BATCH_SIZE"] = "7"
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(stage, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="MEDIA_BATCH_SIZE = '7', but its default is '1'"):
        use_stage("dev")
