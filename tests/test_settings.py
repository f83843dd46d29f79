"""The settings module is the one reader of the environment, and the README's table is its table."""
import re
from pathlib import Path

import pytest

from lib import settings

ROOT = Path(__file__).resolve().parent.parent


def _readme_table() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    rows = {}
    for line in table[2:]:
        names, defaults = (cell.strip() for cell in line.strip("|").split("|")[:2])
        names, defaults = re.findall(r"`([A-Z_]+)`", names), [d.strip("` ") for d in defaults.split(",")]
        if len(defaults) != len(names):
            defaults = defaults * len(names)
        rows.update(zip(names, ["" if d == "unset" else d for d in defaults], strict=True))
    return rows


def test_the_readme_table_lists_every_setting_with_its_default():
    assert _readme_table() == {s.name: s.default for s in settings.SETTINGS}


def test_no_other_module_reads_the_environment():
    readers = [str(path.relative_to(ROOT)) for path in (ROOT / "lib").rglob("*.py")
               if path.name != "settings.py" and re.search(r"os\.environ|getenv\(", path.read_text())]
    assert readers == []


def test_a_setting_is_read_when_asked_for(monkeypatch):
    monkeypatch.setenv("DASHBOARD_POLL_INTERVAL", "1.5")
    assert settings.poll_interval() == 1.5
    monkeypatch.setenv("DASHBOARD_POLL_INTERVAL", " ")
    assert settings.poll_interval() == 5


@pytest.mark.parametrize("value", ["five", "-1", "nan", "inf"])
def test_a_number_that_is_not_one_names_its_variable(monkeypatch, value):
    monkeypatch.setenv("DASHBOARD_ARCHIVE_MAX_MB", value)
    with pytest.raises(settings.SettingError, match="DASHBOARD_ARCHIVE_MAX_MB takes a"):
        settings.archive_max_bytes()


def test_inf_is_no_deadline_and_a_count_is_whole(monkeypatch):
    monkeypatch.setenv("DASHBOARD_ARCHIVE_DEADLINE_SECONDS", "inf")
    assert settings.archive_deadline_seconds() == float("inf")
    monkeypatch.setenv("SIMULATOR_CONCURRENCY", "2.5")
    with pytest.raises(settings.SettingError, match="SIMULATOR_CONCURRENCY takes a whole number"):
        settings.SIMULATOR_CONCURRENCY.whole()


def test_a_password_is_read_as_set_and_a_key_without_its_newline(monkeypatch):
    monkeypatch.setenv("DASHBOARD_PASSWORD", " two words ")
    assert settings.password() == " two words "
    monkeypatch.setenv("DASHBOARD_PASSWORD", "   ")
    assert settings.password() == "   "
    monkeypatch.setenv("RUNWAYML_API_SECRET", "key_abc\n")
    assert settings.api_secret() == "key_abc"


def test_a_bad_poll_interval_stops_a_submission_before_anything_is_sent(store, fake_backend, fake_runway,
                                                                        monkeypatch):
    from lib.tasks import submit_task

    monkeypatch.setenv("DASHBOARD_POLL_INTERVAL", "soon")
    result = submit_task(store, fake_backend, task_type="text_to_image", model_id="gen4_image",
                         inputs={"promptText": "A lamp", "ratio": "1024:1024"})
    assert result.error == ("Nothing was sent: DASHBOARD_POLL_INTERVAL takes a number of 0 or more; it is set to "
                            "'soon'. Fix the setting and restart the dashboard.")
    assert fake_runway.requests == [] and store.recent_tasks(limit=5) == []


def test_the_database_path_and_the_simulator_state_beside_it(monkeypatch, tmp_path):
    monkeypatch.delenv("DASHBOARD_DB", raising=False)
    monkeypatch.delenv("SIMULATOR_STATE_DIR", raising=False)
    assert settings.db_path() == ROOT / "data" / "dashboard.db"
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "team.db"))
    assert settings.simulator_state_dir() == tmp_path / "simulator"
    monkeypatch.setenv("SIMULATOR_STATE_DIR", str(tmp_path / "elsewhere"))
    assert settings.simulator_state_dir() == tmp_path / "elsewhere"
