"""Compare: a group's (or any chosen) tasks side by side, one column each, with ratings,
notes and a winner that are stored in SQLite and come back on reload."""
from __future__ import annotations

import re

from lib import compare
from lib.store import Store
from lib.store.queries import Filters
from tests.support.apptest import open_page
from tests.support.history import insert_output, insert_task

COMPARE_PAGE = "pages/11_Compare.py"
MODELS = ("gen4.5", "veo3.1", "veo3.1_fast")


def _page(**query):
    return open_page(COMPARE_PAGE, **query)


def _group(store: Store, group_id: str = "g-lighthouse") -> list[int]:
    ids = []
    for model in MODELS:
        task_id = insert_task(store, model=model, group_id=group_id, prompt="A lighthouse at dawn")
        insert_output(store, task_id, path=f"static/{model}-{task_id}.mp4")
        ids.append(task_id)
    return ids


def test_a_group_shows_one_equal_player_per_model(app_env):
    store = Store(app_env / "dashboard.db")
    ids = _group(store)
    insert_task(store, model="gen4.5", group_id="another", prompt="elsewhere")
    at = _page(group="g-lighthouse")
    assert not at.exception
    bar, *cells = [f.proto.srcdoc for f in at.get("iframe")]  # Play all, then one frame a column
    assert "Play all" in bar and "<video" not in bar and len(cells) == 3
    html = "".join(cells)
    assert re.findall(r'<video src="/app/static/([^"]+)"', html) == [f"{m}-{i}.mp4" for m, i in zip(MODELS, ids)]
    assert all('data-row="row-0"' in c and "aspect-ratio: 1.7778" in c for c in cells)  # one row, one shape
    text = " ".join(m.value for m in at.markdown)
    # Each column's number links to its task (a page link; AppTest, with no app around the page, draws
    # ui.link's stand-in).
    assert all(re.search(rf"\[#{i} · [^]]+\]\(Task\?task={i}\)", text) for i in ids)
    assert [t.value for t in at.text] == ["A lighthouse at dawn"] and "elsewhere" not in text
    assert len(at.get("feedback")) == 3 and len(at.text_area) == 3
    store.close()


def test_ratings_notes_and_winner_are_kept_across_reloads_for_each_teammate(app_env):
    store = Store(app_env / "dashboard.db")
    ids = _group(store)
    at = _page(group="g-lighthouse", teammate="Ana")
    at.get("feedback")[1].set_value(3).run()  # four stars
    at.text_area(key=f"notes_{ids[1]}").input("Best light, \"warm\"\n<b>sharp</b>").run()
    at.radio[0].set_value(ids[1]).run()
    assert not at.exception
    [vote] = store.reviews_for(ids)[ids[1]]["votes"]
    assert (vote["rating"], vote["winner"], vote["reviewer"]) == (4, 1, "Ana")
    assert vote["notes"] == "Best light, \"warm\"\n<b>sharp</b>"

    again = _page(group="g-lighthouse", teammate="Ana")  # a new session: what it shows comes from SQLite
    assert [f.value for f in again.get("feedback")] == [None, 3, None]
    assert again.text_area(key=f"notes_{ids[1]}").value == "Best light, \"warm\"\n<b>sharp</b>"
    assert again.radio[0].value == ids[1]

    leo = _page(group="g-lighthouse", teammate="Leo")  # another teammate starts from his own blank review
    assert [f.value for f in leo.get("feedback")] == [None, None, None] and leo.radio[0].value is None
    assert leo.text_area(key=f"notes_{ids[1]}").value == ""
    assert "Best light" in " ".join(t.value for t in leo.text)  # Ana's note, shown as hers
    leo.get("feedback")[1].set_value(1).run()  # two stars
    leo.radio[0].set_value(ids[2]).run()
    text = " ".join(m.value for m in leo.markdown).replace("\\", "")  # as read, markdown escapes undone
    assert "**3.0 ★** from 2 ratings" in text and "Ana: ★★★★ · winner; Leo: ★★" in text
    captions = [c.value.replace("\\", "") for c in leo.caption]
    assert f"Winner votes: #{ids[1]} · veo3.1: Ana; #{ids[2]} · veo3.1_fast: Leo" in captions

    again.get("feedback")[1].set_value(None).run()  # Ana takes her stars back; Leo's stay
    reviews = store.reviews_for(ids)
    assert [reviews.get(i, {}).get("winner", 0) for i in ids] == [0, 1, 1]
    assert (reviews[ids[1]]["average"], reviews[ids[1]]["count"]) == (2.0, 1)
    assert reviews[ids[1]]["notes"] == "Ana: Best light, \"warm\"\n<b>sharp</b>"
    store.close()


def test_any_set_of_tasks_can_be_compared(app_env):
    store = Store(app_env / "dashboard.db")
    ids = _group(store)
    image = insert_task(store, task_type="text_to_image", model="gen4_image", prompt="A kite")
    insert_output(store, image, path=f"static/kite-{image}.png", mime="image/png")
    failed = insert_task(store, status="FAILED", failure="The output failed internal quality checks.",
                         failure_code="INTERNAL.BAD_OUTPUT.CODE01", prompt="A glitch")
    at = _page(tasks=f"{failed}, {ids[0]} {image}")
    assert not at.exception
    html = "".join(f.proto.srcdoc for f in at.get("iframe"))
    assert re.findall(r'<(video|img) src="/app/static/[^"]+"', html) == ["video", "img"]
    assert '<div class="box empty">failed</div>' in html
    assert any("internal quality checks" in e.value for e in at.error)
    assert not any(m.value == "**Prompt**" for m in at.markdown)  # prompts differ: one per column
    store.close()


def test_compare_without_a_choice_says_how_to_pick(app_env):
    at = _page()
    assert not at.exception
    assert any("Pick a group" in i.value for i in at.info)


def test_players_are_equal_synced_and_never_carry_a_prompt():
    tasks = [{"id": i, "task_type": "text_to_video", "model": model, "status": "SUCCEEDED",
              "request": {"ratio": "720:1280", "promptText": "<script>alert(1)</script>"}}
             for i, model in enumerate(("gen4.5", "veo3.1\"><img src=x onerror=alert(1)>"), start=1)]
    cols = [compare.Column(t, ({"path": f"static/{t['id']}.mp4", "mime": "video/mp4"},)) for t in tasks]
    cells = [compare.cell_html(c, compare.aspect(cols), "row-0") for c in cols]
    bar = compare.bar_html("row-0")
    assert all("aspect-ratio: 0.5625" in c and 'data-row="row-0"' in c for c in cells)
    html = "".join(cells) + bar
    assert "alert(1)</script>" not in html and "<img src=x" not in html and "&lt;img src=x" in html
    assert compare.has_players(cols) and 'const ROW = "row-0";' in bar
    for event in ("'play'", "'pause'", "'seeked'"):
        assert f"addEventListener({event}" in bar
    assert compare.parse_task_ids("12, 15 18,12 #20") == [12, 15, 18, 20]
    assert compare.selection("g1", []) == Filters(group_id="g1")
    assert compare.selection("g1", [3, 4]) == Filters(task_ids=(3, 4))


def test_each_column_shows_what_differs_run_time_and_credits_and_only_finished_ones_are_judged(app_env):
    store = Store(app_env / "dashboard.db")
    base = {"model": "gen4.5", "promptText": "A kite", "ratio": "1280:720"}
    ids = [insert_task(store, group_id="g-seeds", teammate="Maya", request={**base, "seed": seed, "duration": duration})
           for seed, duration in ((1, 5), (2, 5), (3, 10))]
    stopped = insert_task(store, group_id="g-seeds", status="CANCELLED", cost_credits=None,
                          request={**base, "seed": 4, "duration": 5})
    for task_id in ids:
        insert_output(store, task_id, path=f"static/seed-{task_id}.mp4")
    cols = compare.columns(store, Filters(group_id="g-seeds"))
    assert [c.differs for c in cols] == [("seed 1", "5 s"), ("seed 2", "5 s"), ("seed 3", "10 s"), ("seed 4", "5 s")]
    assert cols[0].label == f"#{ids[0]} · gen4.5 · seed 1 · 5 s"  # the ratio is the same for all: not repeated
    assert cols[0].facts == "ran 29.0 s · 60 credits charged" and cols[3].facts.endswith("· 0 credits charged")

    at = _page(group="g-seeds", teammate="Leo")
    assert not at.exception
    assert len(at.get("feedback")) == 3  # the cancelled task has nothing to rate
    assert [o.replace("\\", "") for o in at.radio[0].options] == [
        "none yet", *(f"#{i} · gen4.5 · seed {s} · {d} s" for i, s, d in zip(ids, (1, 2, 3), (5, 5, 10)))]
    assert "only a finished output can be rated or win" in " ".join(c.value for c in at.caption)
    assert f"#{ids[2]} · gen4.5<" in at.get("iframe")[3].proto.srcdoc  # in the frame: number and model only
    assert stopped not in [c.task["id"] for c in cols if compare.can_review(c)]

    listing = _page(teammate="Leo")  # nothing picked: the groups, by prompt, size, models, owner and date
    text = " ".join(m.value for m in listing.markdown).replace("\\", "")
    assert "“A kite” · 4 tasks · gen4.5 · by Maya · " in text and "?group=g-seeds" in text
    store.close()


def test_a_field_a_task_s_model_does_not_take_is_not_said_missing(app_env):
    store = Store(app_env / "dashboard.db")
    video = insert_task(store, group_id="g-mixed", request={"model": "gen4.5", "promptText": "A kite",
                                                              "ratio": "1280:720", "duration": 5, "seed": 3})
    unseeded = insert_task(store, group_id="g-mixed", request={"model": "gen4.5", "promptText": "A kite",
                                                                 "ratio": "1280:720", "duration": 5})
    image = insert_task(store, group_id="g-mixed", task_type="text_to_image", model="gen4_image",
                        request={"model": "gen4_image", "promptText": "A kite", "ratio": "1920:1080", "seed": 3})
    said = compare.differences([store.task(i) for i in (video, unseeded, image)])
    # gen4_image takes no duration: nothing about it; gen4.5 takes a seed the second task left unset.
    assert said == {video: ("1280:720", "5 s", "seed 3"), unseeded: ("1280:720", "5 s", "no seed"),
                    image: ("1920:1080", "seed 3")}
