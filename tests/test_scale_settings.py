"""The scale-out settings: a database or storage URL is never shown or logged as it is, its
password masked wherever it is mentioned, and a PostgreSQL that does not answer is said in
words, with nothing of the URL in them."""
from __future__ import annotations

import logging

import pytest

from lib import settings
from lib.store.connect import masked
from tests.support.apptest import open_page

PASSWORD = "s3cr3t-Pa55"


@pytest.mark.parametrize(("url", "shown"), [
    (f"postgresql://dash:{PASSWORD}@db.internal:5432/team", "postgresql://dash:***@db.internal:5432/team"),
    ("postgresql://dash@db.internal/team", "postgresql://dash@db.internal/team"),
    (f"postgresql://db.internal/team?password={PASSWORD}&sslmode=require", "postgresql://db.internal/team?***"),
    (f"postgresql://dash:{PASSWORD}@[::1]:5432/team", "postgresql://dash:***@[::1]:5432/team"),
    # Unencoded characters a parser reads as the start of the path, query or fragment.
    (f"postgresql://dash:pa/{PASSWORD}@db.internal:5432/team", "postgresql://dash:***@db.internal:5432/team"),
    (f"postgresql://dash:pa#{PASSWORD}@db.internal/team", "postgresql://dash:***@db.internal/team"),
    (f"postgresql://dash:pa?{PASSWORD}@db.internal/team", "postgresql://dash:***@db.internal/team"),
    (f"postgresql://dash:pa@{PASSWORD}@db.internal/team", "postgresql://dash:***@db.internal/team"),
    (f"postgresql://dash:{PASSWORD}@[::1/team", "postgresql://dash:***@[::1/team"),
])
def test_a_url_is_mentioned_only_with_its_password_masked(url, shown):
    assert masked(url) == shown
    assert PASSWORD not in masked(url)


def test_unset_means_the_sqlite_file_and_the_local_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("DASHBOARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("DASHBOARD_STORAGE_URL", raising=False)
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "team.db"))
    assert settings.database() == tmp_path / "team.db"
    assert settings.storage_url() == ""
    assert settings.polling() is True


@pytest.mark.parametrize(("name", "value", "reader"), [
    ("DASHBOARD_DATABASE_URL", f"mysql://dash:{PASSWORD}@db/team", settings.database),
    ("DASHBOARD_STORAGE_URL", f"https://key:{PASSWORD}@bucket.example/x", settings.storage_url),
    ("DASHBOARD_POLLING", "sometimes", settings.polling),
    ("DASHBOARD_DATABASE_URL", f"mysql://dash:{PASSWORD}@[::1/team", settings.database),
])
def test_a_setting_of_the_wrong_kind_is_named_and_its_value_never_echoed(monkeypatch, name, value, reader):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingError, match=name) as raised:
        reader()
    assert PASSWORD not in str(raised.value)


def test_a_database_that_does_not_answer_is_said_in_words_without_its_url(app_env, monkeypatch, caplog):
    from tests.support.net import free_port

    url = f"postgresql://dash:{PASSWORD}@127.0.0.1:{free_port()}/team"  # nothing listens there
    monkeypatch.setenv("DASHBOARD_DATABASE_URL", url)
    with caplog.at_level(logging.DEBUG):
        at = open_page("app.py")
    shown = " ".join(e.value for e in at.error)
    assert "does not answer" in shown and "DASHBOARD_DATABASE_URL" in shown
    everything = shown + " ".join(str(m.value) for m in at.markdown) + caplog.text
    assert PASSWORD not in everything and url not in everything
    assert not at.exception


@pytest.mark.parametrize("url", [
    f"postgresql://dash:p%zz{PASSWORD}@127.0.0.1:5432/team",  # a % that is no percent-encoding
    f"postgresql://dash:{PASSWORD}@[::1/team",
    f"postgresql://dash:pa/{PASSWORD}@127.0.0.1:5432/team",
])
def test_a_url_postgresql_cannot_read_is_refused_without_a_word_of_it(url):
    import sqlite3

    from lib.store.connect import connect_postgres

    with pytest.raises(sqlite3.Error) as raised:
        connect_postgres(url)
    assert PASSWORD not in str(raised.value) and "p%zz" not in str(raised.value)
