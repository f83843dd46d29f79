from datetime import datetime, timedelta, timezone

import streamlit as st

from lib import catalog, leaderboard, ui

ctx = ui.setup_page("Models", "🏆")
st.title("🏆 Models")
st.caption(f"The team's leaderboard, from its own history: every Compare winner vote beats the other finished "
           f"tasks it was compared with, and two tasks of one comparison rated by one teammate make a pair. "
           f"The score is Bradley–Terry (1000 is the average model of its task type, +100 wins about 64 % "
           f"against it) with a 95 % interval; a model needs {leaderboard.MIN_COMPARISONS} comparisons to be "
           f"ranked. Removed tasks still count.")

PERIODS = {"All time": None, "Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90}
task_types = {t.key: t.name for t in catalog.TASK_TYPES}
row = st.columns(4)
period = row[0].selectbox("Period (UTC)", list(PERIODS), key="board_period", bind="query-params")
teammate = row[1].selectbox("Teammate", leaderboard.teammates(ctx.store), index=None, key="board_by",
                            bind="query-params", placeholder="Everyone", format_func=lambda n: n or "(no name)",
                            help="Tasks the teammate submitted; comparisons and ratings the teammate gave.")
# Options are what the address shows (a bound widget writes its label there): the task types' names.
by_name = {name: key for key, name in task_types.items()}
type_name = row[2].selectbox("Task type", list(by_name), index=None, key="board_type", bind="query-params",
                             placeholder="Every task type")
ratio = row[3].selectbox("Ratio", leaderboard.ratios(), index=None, key="board_ratio", bind="query-params",
                         placeholder="Any ratio")
days = PERIODS.get(period)
since = (datetime.now(timezone.utc) - timedelta(days=days - 1)).date() if days else None


@st.cache_data(max_entries=64, show_spinner=False)
def _board(_store, key: str, version: int, filters: leaderboard.Filters) -> dict:
    """The leaderboard, computed once per change of the history (`version`) and filters, for
    every session: a rerun or a teammate's visit with nothing new reads no task."""
    return leaderboard.board(_store, filters)


version = ctx.store.change_version()
filters = leaderboard.Filters(since=since, teammate=teammate, task_type=by_name.get(type_name), ratio=ratio)
boards = _board(ctx.store, ctx.store.key, version, filters)
if not boards:
    st.info("No task or comparison matches these filters yet. Compare outputs of several models and vote for "
            "the best, and the leaderboard fills in.")
    st.stop()


def _chart(frame, unit: str) -> dict | None:
    """Quality (BT score, with its interval) against cost: the models worth paying for sit top left.
    A Vega-Lite spec with its rows inline: Altair would add 27 MB to the server for three marks."""
    shown = frame[frame["bt_score"].notna() & frame["credits_per_unit"].notna()].assign(
        ranked=lambda f: f["rank"].notna().map({True: "ranked", False: "not ranked yet"}))
    if shown.empty:
        return None
    columns = ["model", "standing", "bt_score", "bt_low", "bt_high", "comparisons", "credits_per_unit", "ranked"]
    x = {"field": "credits_per_unit", "type": "quantitative", "title": f"Credits per {unit}",
         "scale": {"zero": False, "padding": 30}}
    colour = {"field": "ranked", "type": "nominal", "title": None, "legend": {"orient": "bottom"},
              "scale": {"domain": ["ranked", "not ranked yet"], "range": ["#1f77b4", "#9aa0a6"]}}
    score = {"field": "bt_score", "type": "quantitative"}
    tooltip = [{"field": "model", "type": "nominal", "title": "Model"},
               {"field": "standing", "type": "nominal", "title": "Standing"},
               {"field": "bt_score", "type": "quantitative", "title": "Score", "format": ".0f"},
               {"field": "comparisons", "type": "quantitative", "title": "Comparisons"},
               {"field": "credits_per_unit", "type": "quantitative", "title": f"Credits per {unit}", "format": ".2f"}]
    return {"data": {"values": shown[columns].to_dict("records")}, "height": 320, "layer": [
        {"mark": {"type": "rule", "strokeWidth": 3, "opacity": 0.45},
         "encoding": {"x": x, "y": {"field": "bt_low", "type": "quantitative", "title": "Score, 95 % interval",
                                    "scale": {"zero": False, "padding": 20}},
                      "y2": {"field": "bt_high"}, "color": colour}},
        {"mark": {"type": "circle", "size": 120},
         "encoding": {"x": x, "y": score, "color": colour, "tooltip": tooltip}},
        {"mark": {"type": "text", "align": "left", "dx": 8, "dy": -6},
         "encoding": {"x": x, "y": score, "text": {"field": "model", "type": "nominal"}}}]}


for key, frame in boards.items():
    unit = leaderboard.unit_of(key)
    st.subheader(task_types.get(key, key))
    chart = _chart(frame, unit)
    if chart is not None:
        st.vega_lite_chart(chart, width="stretch")
    else:
        st.caption("No model here has both a score and a known price yet, so there is no chart.")
    table = frame.drop(columns=["rank", "unit"]).fillna({"failures": ""})
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "model": st.column_config.TextColumn("Model"),
        "standing": st.column_config.TextColumn("Rank"),
        "bt_score": st.column_config.NumberColumn("Score", format="%.0f"),
        "bt_low": st.column_config.NumberColumn("95 % from", format="%.0f"),
        "bt_high": st.column_config.NumberColumn("95 % to", format="%.0f"),
        "comparisons": st.column_config.NumberColumn("Comparisons"),
        "win_rate": st.column_config.NumberColumn("Compare wins", format="percent"),
        "votes": st.column_config.NumberColumn("Vote pairs"),
        "rating_average": st.column_config.NumberColumn("Rating", format="%.1f ★"),
        "rating_count": st.column_config.NumberColumn("Ratings"),
        "tasks": st.column_config.NumberColumn("Tasks"),
        "success_rate": st.column_config.NumberColumn("Succeeded", format="percent"),
        "failures": st.column_config.TextColumn("Top failure codes"),
        "median_s": st.column_config.NumberColumn("Median time", format="%.1f s"),
        "p90_s": st.column_config.NumberColumn("90th pct time", format="%.1f s"),
        "queue_median_s": st.column_config.NumberColumn("Median queue", format="%.1f s"),
        "credits_per_unit": st.column_config.NumberColumn(f"Credits / {unit}", format="%.2f"),
    })
