"""CSV and ZIP exports: every field a teammate would analyse, safe in a spreadsheet, read back
intact by pandas, written in batches rather than built in memory."""
from __future__ import annotations

import csv
import io
import re
import tempfile
import tracemalloc
import zipfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from lib import export
from lib.store import Store, queries
from lib.store.queries import Filters
from tests.support import services
from tests.support.history import START, insert_output, insert_task, insert_tasks, task_row

AWKWARD = [
    'commas, "quotes", and more, commas',
    "two\nlines\r\nand a third",
    "灯台の夜明け — ночь — 🌊",
    "=HYPERLINK(\"http://evil.test\")",
    "+1 more",
    "-2 less",
    "@SUM(A1:A9)",
]


def _read(file) -> pd.DataFrame:
    return pd.read_csv(file, dtype=str, keep_default_na=False)


def test_csv_round_trips_through_pandas(store):
    ids = [insert_task(store, prompt=p, teammate="Ana, \"the\" lead", group_id="g=1",
                       request={"model": "gen4.5", "promptText": p, "ratio": "1280:720", "duration": 5, "seed": 42},
                       failure="Bad, \"very\" bad\nindeed" if i == 1 else None, status="FAILED" if i == 1
                       else "SUCCEEDED", failure_code="INTERNAL.BAD_OUTPUT.CODE01" if i == 1 else None)
           for i, p in enumerate(AWKWARD)]
    insert_output(store, ids[0], path="static/aa.mp4", url="https://cdn.test/a.mp4?x=1,2")
    insert_output(store, ids[0], position=1, path="static/bb.mp4", url="https://cdn.test/b.mp4")
    child = insert_task(store, prompt="upscaled", task_type="video_upscale", model="upscale_v1",
                        request={"model": "upscale_v1", "videoUri": "stored:video/mp4:abc.mp4"}, parent_task_id=ids[0])
    store.set_rating(ids[0], 4, "Bo")
    store.set_notes(ids[0], "=better, \"sharper\"\nkeep", "Bo")
    store.set_winner(ids, ids[0], "Bo")
    store.set_rating(ids[0], 1, "Leo")  # a second teammate's own rating: the average moves, Bo's stays
    store.set_notes(ids[0], "too dark", "Leo")

    raw = b"".join(export.csv_bytes(store, Filters(), base="http://localhost:8501"))
    assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw
    frame = _read(io.BytesIO(raw))

    assert list(frame.columns) == list(queries.CSV_COLUMNS)
    assert len(frame) == len(AWKWARD) + 1
    assert frame["id"].astype(int).tolist() == [*ids, child]
    shown = frame["prompt"].tolist()[:len(AWKWARD)]
    assert shown[:3] == AWKWARD[:3]  # commas, quotes, newlines, non-Latin text come back as written
    assert shown[3:] == ["'" + p for p in AWKWARD[3:]]  # formulas are neutralised, not lost
    first = frame.iloc[0]
    assert first["teammate"] == 'Ana, "the" lead' and first["group_id"] == "g=1"
    assert (first["ratio"], first["duration"], first["seed"]) == ("1280:720", "5", "42")
    assert first["output_urls"] == "https://cdn.test/a.mp4?x=1,2 https://cdn.test/b.mp4"
    # Archived copies and the task's page as URLs a teammate opens, never paths on the server.
    assert first["archived_urls"] == "http://localhost:8501/app/static/aa.mp4 http://localhost:8501/app/static/bb.mp4"
    assert first["task_url"] == f"http://localhost:8501/Task?task={ids[0]}"
    assert (first["rating_average"], first["rating_count"], first["winner_votes"]) == ("2.5", "2", "1")
    assert first["notes"] == "Bo: =better, \"sharper\"\nkeep\nLeo: too dark"  # each note named
    assert (first["status"], first["api_status"], first["task_type"], first["model"]) == (
        "SUCCEEDED", "SUCCEEDED", "text_to_video", "gen4.5")
    assert first["created_at"] == START.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert float(first["run_seconds"]) == 29.0  # submitted one second after creation, finished at 30 s
    assert (first["estimated_credits"], first["cost_credits"]) == ("60.0", "60.0")
    failed = frame.iloc[1]
    assert failed["failure"] == 'Bad, "very" bad\nindeed' and failed["failure_code"] == "INTERNAL.BAD_OUTPUT.CODE01"
    assert (failed["winner_votes"], failed["rating_average"], failed["rating_count"]) == ("0", "", "0")
    last = frame.iloc[-1]
    assert last["parent_task_id"] == str(ids[0]) and last["input_sources"] == "videoUri=uploaded file"


def test_export_writes_what_the_filters_select(store):
    insert_tasks(store, [task_row(prompt=f"shot {i}", status="FAILED" if i % 3 == 0 else "SUCCEEDED",
                                  created=START + timedelta(minutes=i)) for i in range(30)])
    frame = _read(io.BytesIO(b"".join(export.csv_bytes(store, Filters(statuses=("FAILED",)), batch=4))))
    assert frame["prompt"].tolist() == [f"shot {i}" for i in range(0, 30, 3)]
    assert set(frame["status"]) == {"FAILED"}


def test_every_cell_a_person_or_the_api_wrote_is_neutralised(store):
    """Cells built by SQL (JSON fields, joined outputs, reviews) are made safe like plain ones."""
    task = insert_task(store, teammate="-Bo", group_id="@g", task_uuid="=uuid", status="FAILED",
                       failure="+failed", failure_code="-1", cost_credits=-4.0,
                       request={"model": "gen4.5", "promptText": "\tindented", "ratio": "=1:1", "duration": -5,
                                "seed": -42})
    insert_output(store, task, position=1, url="https://cdn.test/second.mp4")
    insert_output(store, task, position=0, url="=HYPERLINK(\"x\")", path="static/first.mp4")
    store.set_notes(task, "@notes", "=Bo")  # a name is written by a person too
    [row] = list(csv.DictReader(io.StringIO(b"".join(export.csv_bytes(store, Filters())).decode("utf-8-sig"))))
    assert {k: row[k] for k in ("teammate", "group_id", "task_uuid", "failure", "failure_code", "cost_credits",
                                "prompt", "ratio", "duration", "seed", "notes")} == {
        "teammate": "'-Bo", "group_id": "'@g", "task_uuid": "'=uuid", "failure": "'+failed", "failure_code": "'-1",
        "cost_credits": "'-4.0", "prompt": "'\tindented", "ratio": "'=1:1", "duration": "'-5", "seed": "'-42",
        "notes": "'=Bo: @notes"}
    # Outputs in position order, whatever order they were recorded in.
    assert row["output_urls"] == "'=HYPERLINK(\"x\") https://cdn.test/second.mp4"
    assert row["archived_urls"] == "/app/static/first.mp4"  # no request at hand: root-relative
    assert row["task_url"] == f"/Task?task={task}"


def test_media_inputs_are_listed_by_field_and_inline_files_by_kind(store):
    request = {"model": "gen4_turbo", "promptText": "a \"promptImage\": in the prompt is not an input",
               "promptImage": [{"uri": "https://img.test/a.png", "position": "first"},
                               {"uri": "data:image/png;base64,AAAA", "position": "last"}]}
    insert_task(store, task_type="image_to_video", model="gen4_turbo", request=request)
    insert_task(store, request={"model": "gen4.5", "promptText": "\"videoUri\": only in words"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.csv_bytes(store, Filters())).decode("utf-8-sig"))))
    assert [r["input_sources"] for r in rows] == [
        "promptImage=https://img.test/a.png promptImage=uploaded file", ""]


def test_csv_is_written_in_batches_not_built_in_memory(store, quiet_process):
    prompt = "a long and winding prompt " * 12
    insert_tasks(store, [task_row(prompt=f"shot {i}: {prompt}", created=START + timedelta(seconds=i))
                         for i in range(20_000)])
    tracemalloc.start()
    pieces = size = 0
    for piece in export.csv_bytes(store, Filters(), batch=500):
        pieces, size = pieces + 1, size + len(piece)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert pieces == 40 and size > 8_000_000  # 20,000 rows, handed out 500 at a time
    assert peak < 3_000_000, peak  # an 8 MB file written in well under 3 MB


def test_the_csv_of_a_postgresql_history_comes_through_a_server_side_cursor():
    """PostgreSQL holds the result and hands it over a batch at a time: while the CSV is being read
    the store's session has a cursor open on the server, and none once the reader stops early."""
    with services.fresh_postgres() as url:
        store = Store(url)
        ids = insert_tasks(store, [task_row(prompt=f"shot {i}", created=START + timedelta(seconds=i))
                                   for i in range(1200)])
        cursors = "SELECT COUNT(*) FROM pg_cursors WHERE name LIKE 'stream_%'"
        pieces = export.csv_bytes(store, Filters(), batch=500)
        first = next(pieces).decode("utf-8-sig")
        assert len(first.splitlines()) == 1 + 500 and store.conn.execute(cursors).fetchone()[0] == 1
        pieces.close()  # the reader went away (a closed download)
        assert store.conn.execute(cursors).fetchone()[0] == 0 and not store.conn.in_transaction
        whole = b"".join(export.csv_bytes(store, Filters(), batch=500)).decode("utf-8-sig")
        assert [int(r["id"]) for r in csv.DictReader(io.StringIO(whole))] == ids
        store.close()


def test_zip_holds_the_archived_outputs_and_a_manifest(store, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "one.mp4").write_bytes(b"video one")
    (static / "two.png").write_bytes(b"image two")
    first = insert_task(store, prompt="=a fox, \"quoted\"", group_id="g1")
    second = insert_task(store, prompt="a kite", group_id="g1", task_type="text_to_image", model="gen4_image")
    elsewhere = insert_task(store, prompt="not in the group")
    insert_output(store, first, path="static/one.mp4", size=9)
    insert_output(store, second, path="static/two.png", mime="image/png", size=9)
    insert_output(store, second, position=1)  # not archived yet
    insert_output(store, elsewhere, path="static/one.mp4")
    store.set_winner([first, second], second, "Ana")
    store.set_rating(second, 5, "Ana")
    store.set_rating(second, 4, "=Leo")

    assert queries.archived_totals(store, Filters(group_id="g1")) == (2, 18)
    with export.zip_file(queries.iter_tasks(store, Filters(group_id="g1")), static_dir=static,
                         base="http://localhost:8501") as out:
        bundle = zipfile.ZipFile(out)
        names = sorted(bundle.namelist())
        video, image = f"task-{first}-gen4.5-a-fox-quoted.mp4", f"task-{second}-gen4_image-a-kite.png"
        assert names == ["manifest.csv", "reviews.csv", video, image]
        assert bundle.read(video) == b"video one"
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode("utf-8-sig"))))
        reviews = list(csv.DictReader(io.StringIO(bundle.read("reviews.csv").decode("utf-8-sig"))))
    assert [(m["task_id"], m["output_position"], m["file"]) for m in manifest] == [
        (str(first), "0", video), (str(second), "0", image), (str(second), "1", "(not archived)")]
    assert manifest[0]["prompt"] == "'=a fox, \"quoted\""
    assert (manifest[1]["rating_average"], manifest[1]["rating_count"], manifest[1]["winner_votes"]) == (
        "4.5", "2", "1")
    # Who said what: one line per teammate's own review.
    assert [(r["task_id"], r["reviewer"], r["rating"], r["winner"]) for r in reviews] == [
        (str(second), "'=Leo", "4", ""), (str(second), "Ana", "5", "yes")]
    assert manifest[1]["mime"] == "image/png"
    assert [(m["task_url"], m["archived_url"]) for m in manifest] == [
        (f"http://localhost:8501/Task?task={first}", "http://localhost:8501/app/static/one.mp4"),
        (f"http://localhost:8501/Task?task={second}", "http://localhost:8501/app/static/two.png"),
        (f"http://localhost:8501/Task?task={second}", "")]


HOSTILE_PROMPTS = [
    "A red fox on a cliff", "../../etc/passwd", "CON", "nul.txt", "C:\\Windows\\system32", "...", " . ",
    "<img src=x onerror=alert(1)>", "\u202egnp.exe", "a\x00b\x1fc\r\nd", "灯台の夜明け — ночь — 🌊", "Café déjà vu",
    "word " * 200, "x" * 500, "", "🌊🌊🌊",
]


def test_output_file_names_carry_task_model_and_prompt_and_are_safe_everywhere():
    def name(prompt, position=0, model="gen4.5", suffix=".mp4"):
        return export.output_filename({"id": 12, "model": model, "request": {"promptText": prompt}}, position, suffix)

    assert name("A red fox on a cliff") == "task-12-gen4.5-a-red-fox-on-a-cliff.mp4"
    assert name("A red fox on a cliff", 1) == "task-12-gen4.5-a-red-fox-on-a-cliff-2.mp4"
    assert name("Café déjà vu, ﬁne!", suffix=".PNG") == "task-12-gen4.5-cafe-deja-vu-fine.png"
    assert name("灯台の夜明け") == "task-12-gen4.5.mp4"  # nothing ASCII to keep: the id and model say enough
    assert name("a kite", model="../up/..") == "task-12-up-a-kite.mp4"
    assert export.output_filename({"id": 3, "model": "upscale_v1", "request": {}}, 0, ".mp4") == (
        "task-3-upscale_v1.mp4")  # a task type without a prompt
    reserved = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
    for prompt in HOSTILE_PROMPTS:
        for position in (0, 1):
            made = name(prompt, position)
            assert re.fullmatch(r"task-12-gen4\.5(-[a-z0-9]+)*\.mp4", made), made
            assert len(made) <= 80 and made.split(".")[0].lower() not in reserved
            assert len(export.slug(prompt)) <= export.SLUG_MAX
    assert export.slug("word " * 200) == "-".join(["word"] * 8)  # cut between words, not inside one


def test_a_path_in_a_subfolder_of_static_is_no_archived_file_in_the_csv_nor_the_zip(store, tmp_path):
    # The archive writes no subfolders: static/a/b.mp4 is not one of its files, whichever export reads it.
    static = tmp_path / "static"
    static.mkdir()
    (static / "b.mp4").write_bytes(b"another task's video")
    task = insert_task(store, prompt="a fox", group_id="g1")
    insert_output(store, task, path="static/a/b.mp4")
    insert_output(store, task, position=1, path="static/c.mp4")
    (static / "c.mp4").write_bytes(b"video c")

    frame = _read(io.BytesIO(b"".join(export.csv_bytes(store, Filters(), base="http://h"))))
    assert frame["archived_urls"].tolist() == ["http://h/app/static/c.mp4"]
    with export.zip_file(queries.iter_tasks(store, Filters(group_id="g1")), static_dir=static, base="http://h") as out:
        bundle = zipfile.ZipFile(out)
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode("utf-8-sig"))))
        assert sorted(bundle.namelist()) == ["manifest.csv", "reviews.csv", f"task-{task}-gen4.5-a-fox-2.mp4"]
    assert [(m["file"], m["archived_url"]) for m in manifest] == [
        ("(not archived)", ""), (f"task-{task}-gen4.5-a-fox-2.mp4", "http://h/app/static/c.mp4")]


def _plant_everything(store) -> None:
    """A history with every kind of cell the CSV writes: awkward text, numbers that are not whole,
    outputs out of order, a sub-folder path, reviews averaging to thirds, a removed task, a child."""
    ids = [insert_task(store, prompt=p, teammate=["Ana", "", "=Bo"][i % 3], group_id=f"g{i % 2}",
                       created=START + timedelta(minutes=i, milliseconds=137 * i),
                       finished_at=(START + timedelta(minutes=i, seconds=31, milliseconds=449 * i)).isoformat(
                           timespec="milliseconds").replace("+00:00", "Z"),
                       request={"model": "gen4.5", "promptText": p, "ratio": "1280:720", "duration": 5.5 + i,
                                "seed": -i, "promptImage": "https://img.test/a.png" if i == 2 else None},
                       status="FAILED" if i == 1 else "SUCCEEDED", failure="+bad\r\nworse" if i == 1 else None,
                       cost_credits=[0.1, None, 60.0, -4.25, 1 / 3, 12.0, 2.5][i])
           for i, p in enumerate(AWKWARD)]
    insert_output(store, ids[0], position=1, path="static/bb.mp4", url="https://cdn.test/b.mp4")
    insert_output(store, ids[0], position=0, path="static/aa.mp4", url="=https://cdn.test/a.mp4?x=1,2")
    insert_output(store, ids[2], path="static/sub/cc.mp4")
    insert_task(store, prompt="upscaled", task_type="video_upscale", model="upscale_v1",
                request={"model": "upscale_v1", "videoUri": "stored:video/mp4:abc.mp4"}, parent_task_id=ids[0])
    for reviewer, rating in (("Bo", 4), ("Leo", 4), ("", 5)):
        store.set_rating(ids[0], rating, reviewer)
    store.set_notes(ids[0], "=sharper\nkeep", "Bo")
    store.set_notes(ids[3], "only a note", "Leo")
    store.set_winner(ids[:3], ids[2], "Maya")
    store.set_rating(ids[5], 2, "Maya")
    store.remove_task(ids[5])
    store.conn.execute("UPDATE tasks SET removed_at = ? WHERE id = ?", ("2026-03-02T10:00:00.000Z", ids[5]))


def test_both_backends_write_the_same_csv_byte_for_byte(tmp_path):
    """One history on SQLite and on PostgreSQL: the same file, whole or filtered, in any batch size."""
    from lib.store import Store

    with services.fresh_postgres() as url:
        backends = [Store(tmp_path / "dashboard.db"), Store(url)]
        for store in backends:
            _plant_everything(store)
        for filters, batch in ((Filters(), 1000), (Filters(), 2), (Filters(prompt="more"), 1000),
                               (Filters(statuses=("SUCCEEDED",), teammates=("", "=Bo")), 3)):
            sqlite, postgres = (b"".join(export.csv_bytes(s, filters, batch, base="http://localhost:8501"))
                                for s in backends)
            assert sqlite == postgres, (filters, batch)
        text = b"".join(export.csv_bytes(backends[1], Filters())).decode("utf-8-sig")
        whole = list(csv.DictReader(io.StringIO(text)))
        assert [r["rating_average"] for r in whole][:4] == ["4.33", "", "", ""] and whole[0]["cost_credits"] == "0.1"
        assert whole[4]["cost_credits"] == str(1 / 3) and whole[3]["cost_credits"] == "'-4.25"
        for store in backends:
            store.close()


def _children() -> set[int]:
    """This process's child processes, as the kernel lists them."""
    return {int(pid) for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()}


def _parts_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("csv-parts-*"))


def test_a_long_export_is_written_by_worker_processes_byte_for_byte(store):
    """The route's export (`csv_stream`) of a long history shares the tasks out between worker
    processes by ranges of ids; the file is csv_bytes's, byte for byte, whatever the filters."""
    _plant_everything(store)
    insert_tasks(store, [task_row(prompt=f"shot {i}, \"{i}\"", created=START + timedelta(hours=1, seconds=i))
                         for i in range(40)])
    tasks, ranges = queries.split_ids(store, Filters(), 2)
    assert tasks == 48 and len(ranges) == 2 and ranges[0][1] + 1 == ranges[1][0]
    before = _children()
    for filters in (Filters(), Filters(prompt="shot"), Filters(statuses=("FAILED",)), Filters(prompt="nowhere")):
        pieces = export.csv_stream(store, filters, base="http://h", batch=7, parallel_min=0)
        first = next(pieces)
        workers = _children() - before
        rest = b"".join(pieces)
        assert first + rest == b"".join(export.csv_bytes(store, filters, 7, base="http://h")), filters
        if queries.split_ids(store, filters, 2)[0] > 1:
            assert len(workers) == 2, filters  # one per core while the first part is read
    assert _children() == before and not _parts_folders()
    # A short export stays in this process.
    assert b"".join(export.csv_stream(store, Filters(), parallel_min=1000)) == b"".join(
        export.csv_bytes(store, Filters()))
    assert _children() == before


def test_stopping_a_long_export_early_stops_its_workers_and_deletes_their_parts(store):
    insert_tasks(store, [task_row(prompt=f"shot {i}", created=START + timedelta(seconds=i)) for i in range(3000)])
    before, folders = _children(), _parts_folders()
    pieces = export.csv_stream(store, Filters(), batch=100, parallel_min=0)
    assert next(pieces).startswith("\ufeffid,task_url".encode())
    assert len(_children() - before) == 2 and len(_parts_folders() - folders) == 1
    pieces.close()
    assert _children() == before and _parts_folders() == folders


def test_a_worker_that_cannot_read_the_history_fails_the_export_plainly(tmp_path, caplog):
    store = Store(tmp_path / "dashboard.db")
    insert_tasks(store, [task_row(prompt=f"shot {i}", created=START + timedelta(seconds=i)) for i in range(10)])
    store.location = tmp_path  # a folder: the workers cannot open it as the database
    before = _children()
    with pytest.raises(export.ExportFailed, match="stopped before its end"):
        b"".join(export.csv_stream(store, Filters(), parallel_min=0))
    assert "CSV export worker failed" in caplog.text and _children() == before and not _parts_folders()
    store.close()
