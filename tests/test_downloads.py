"""Downloads are served by the dashboard's own routes at random-token links: the CSV streams the
filtered history, a tampered, unknown or expired link is refused, an output comes back byte for byte under
the name its ZIP entry has, and the exports' URLs start at the address the download was asked at."""
import csv
import gzip
import io
import time
import zipfile

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from lib import archive, downloads
from lib.store import Store, TaskUpdate, queries


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_DB", str(tmp_path / "dashboard.db"))
    return TestClient(Starlette(routes=downloads.ROUTES))


def _task(store, prompt, status, outputs=1):
    task_id = store.record_submission(backend="simulator", task_type="text_to_video", model="gen4.5",
                                      endpoint="/v1/text_to_video", body={"promptText": prompt})
    store.mark_submitted(task_id, f"uuid-{task_id}", None, first_poll_in=0)
    store.apply_update(task_id, TaskUpdate(status, status, output=tuple(f"https://cdn.test/o{i}.mp4" for i in range(
        outputs)) if status == "SUCCEEDED" else ()))
    return task_id


def test_csv_link_streams_the_filtered_rows(client, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    _task(store, "=1+1, a \"quoted\"\nline", "FAILED")
    _task(store, "kept out", "SUCCEEDED")
    answer = client.get(downloads.csv_link(queries.Filters(statuses=("FAILED",))))
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [r["prompt"] for r in rows] == ["'=1+1, a \"quoted\"\nline"]


def test_a_tampered_unknown_or_expired_link_is_refused(client, tmp_path):
    link = downloads.csv_link(queries.Filters())
    assert client.get(link).status_code == 200
    assert client.get(link[:-1] + ("A" if link[-1] != "A" else "B")).status_code == 403
    assert client.get(f"{downloads.PREFIX}/runway-tasks.csv?t=" + "x" * 32).status_code == 403
    assert client.get(f"{downloads.PREFIX}/runway-tasks.csv").status_code == 403
    store = Store(tmp_path / "dashboard.db")
    store.save_link("expired-token-0123456789abcdefghij", {"kind": "csv", "name": "old.csv", "filters": {}},
                    expires_at=time.time() - 1)
    assert client.get(f"{downloads.PREFIX}/old.csv?t=expired-token-0123456789abcdefghij").status_code == 403


def test_output_link_serves_the_archived_file_under_the_name_its_zip_entry_has(client, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    task_id = _task(store, "A red fox on a cliff", "SUCCEEDED", outputs=2)
    outputs = store.outputs_for([task_id])[task_id]
    data = b"\x00\x00\x00\x18ftypisom" + b"\x07" * 300
    files = [f"test-download-output-{i}.mp4" for i in range(2)]
    try:
        for output, name in zip(outputs, files):
            (archive.STATIC_DIR / name).write_bytes(data)
            store.record_archived(output["id"], path=f"static/{name}", mime="video/mp4", size=len(data), sha256="x")
        task, outputs = store.task(task_id), store.outputs_for([task_id])[task_id]
        saved_as = []
        for output in outputs:
            link = downloads.output_link(task, output)
            answer = client.get(link)
            assert answer.status_code == 200 and answer.content == data
            assert answer.headers["content-type"] == "video/mp4"
            saved_as.append(answer.headers["content-disposition"].split("''", 1)[1])
            assert link.startswith(f"{downloads.PREFIX}/{saved_as[-1]}?t=")
        assert saved_as == [f"task-{task_id}-gen4.5-a-red-fox-on-a-cliff.mp4",
                            f"task-{task_id}-gen4.5-a-red-fox-on-a-cliff-2.mp4"]
        bundle = zipfile.ZipFile(io.BytesIO(client.get(downloads.zip_link(queries.Filters())).content))
        assert sorted(n for n in bundle.namelist() if n.endswith(".mp4")) == sorted(saved_as)  # one naming for both
    finally:
        for name in files:
            (archive.STATIC_DIR / name).unlink()


def test_exports_give_urls_at_the_address_the_download_was_asked_at(client, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    task_id = _task(store, "a kite", "SUCCEEDED")
    [output] = store.outputs_for([task_id])[task_id]
    store.record_archived(output["id"], path="static/kite-output.mp4", mime="video/mp4", size=9, sha256="x")

    def row(host: str, scheme: str = "http") -> dict:
        answer = client.get(f"{scheme}://testserver" + downloads.csv_link(queries.Filters()), headers={"Host": host})
        [cells] = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
        return {k: cells[k] for k in ("task_url", "archived_urls")}

    assert row("localhost:8501") == {"task_url": f"http://localhost:8501/Task?task={task_id}",
                                     "archived_urls": "http://localhost:8501/app/static/kite-output.mp4"}
    assert row("dashboard.team.example", "https") == {
        "task_url": f"https://dashboard.team.example/Task?task={task_id}",
        "archived_urls": "https://dashboard.team.example/app/static/kite-output.mp4"}
    assert row("[::1]:8501")["task_url"] == f"http://[::1]:8501/Task?task={task_id}"
    # A Host that is not a plain name and port (the guard keeps such requests out; here nothing does)
    # never gets into a cell: the URLs stay root-relative.
    for host in ('evil"=cmd|x', "a b", "user@host", "host/path", "=1+1"):
        assert row(host) == {"task_url": f"/Task?task={task_id}", "archived_urls": "/app/static/kite-output.mp4"}
    manifest = zipfile.ZipFile(io.BytesIO(client.get(downloads.zip_link(queries.Filters()),
                                                     headers={"Host": "localhost:8501"}).content))
    [line] = list(csv.DictReader(io.StringIO(manifest.read("manifest.csv").decode("utf-8-sig"))))
    assert (line["task_url"], line["archived_url"]) == (
        f"http://localhost:8501/Task?task={task_id}", "http://localhost:8501/app/static/kite-output.mp4")


def test_csv_is_gzipped_for_clients_that_accept_it_and_plain_for_others(client, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    for i in range(300):
        _task(store, f"shot {i}: a lighthouse at dawn", "SUCCEEDED")
    link = downloads.csv_link(queries.Filters())
    with client.stream("GET", link, headers={"Accept-Encoding": "identity"}) as plain:
        body = b"".join(plain.iter_raw())
        assert "content-encoding" not in plain.headers
    with client.stream("GET", link, headers={"Accept-Encoding": "gzip, deflate, br"}) as packed:
        raw = b"".join(packed.iter_raw())
        assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == body and len(raw) < len(body) / 3
    assert len(list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))) == 300


def test_a_zip_named_after_a_group_with_a_slash_still_downloads(client, tmp_path):
    store = Store(tmp_path / "dashboard.db")
    _task(store, "a kite", "FAILED")
    link = downloads.zip_link(queries.Filters(group_id="team/a"), "runway-compare-team/a.zip")
    assert link.startswith("/downloads/runway-compare-team%2Fa.zip?t=")
    answer = client.get(link)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("bytes=0-99", (0, 100)), ("bytes=10-", (10, 1000)), ("bytes=-100", (900, 1000)),
    ("bytes=990-2000", (990, 1000)), ("bytes=0-0", (0, 1)),
    ("bytes=1000-", False), ("bytes=-0", False),  # valid ranges no byte of the file satisfies: 416
    ("bytes=5-2", None), ("bytes=0-1,5-9", None), ("bytes=\xb2-", None), ("bytes=\u0663-", None),
    ("items=0-9", None), ("bytes=-", None), ("bytes= 1-2", None), ("bytes=" + "9" * 30 + "-", None),
])
def test_a_range_is_read_as_rfc_9110_says_and_nothing_else(header, expected):
    from lib.downloads import parse_range

    assert parse_range(header, 1000) == expected
