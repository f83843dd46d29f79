from datetime import date, datetime, timedelta, timezone

import streamlit as st

from lib import downloads, spend, ui
from lib.client import RunwayError

# A long period has tens of thousands of table rows: the page shows the newest, the CSV has them all.
TABLE_ROWS = 1000
DIFFERENCE_ROWS = 100

ctx = ui.setup_page("Spend", "💳")
st.title("💳 Spend")
# Redrawn when spend changes (a task ends, its cost is known), not on every poll's progress.
ui.redraw_on_change(ctx.store, "spend_version", version=ctx.store.spend_version)
backend = ctx.backend.name  # the account the balance is of: the simulator's credits are not the live API's

today = datetime.now(timezone.utc).date()
PERIODS = {
    "Last 7 days": (today - timedelta(days=6), today),
    "Last 30 days": (today - timedelta(days=29), today),
    "This month": (today.replace(day=1), today),
    "Last 90 days": (today - timedelta(days=89), today),
    "This year": (today.replace(month=1, day=1), today),
}
pick, custom = st.columns([2, 3])
period = pick.selectbox("Period (UTC days)", [*PERIODS, "Custom"], index=1, key="spend_period")
if period == "Custom":
    chosen = custom.date_input("From – to", value=PERIODS["Last 30 days"], max_value=today, key="spend_range")
    start, end = (chosen[0], chosen[-1]) if len(chosen) else PERIODS["Last 30 days"]
else:
    start, end = PERIODS[period]


@st.cache_data(max_entries=8, show_spinner=False)
def _figures(_store, key: str, backend: str, start: date, end: date, version: int) -> dict:
    """What the page draws of a period, aggregates only, grouped in SQL: a year has tens of thousands
    of table rows, a figure needs a few hundred. Computed once per database (`key`), backend, period
    and spend `version`, and shared by the sessions."""
    def named(frame):
        return frame.assign(teammate=frame["teammate"].replace("", "(no name)")) if "teammate" in frame else frame

    per_day = {d: named(spend.table(_store, start, end, keys=("day", d), backend=backend)) for d in spend.DIMENSIONS}
    return {"totals": spend.totals(_store, per_day["model"], start, end, backend),
            "rows": spend.table_rows(_store, start, end, backend),
            "by": {d: spend.by(frame, d).head(15) for d, frame in per_day.items()},
            "daily": {d: spend.daily(frame, d) for d, frame in per_day.items()},
            "table": named(spend.table(_store, start, end, newest=TABLE_ROWS, backend=backend))}

def _bars(title: str | None, x: dict, y: dict, color: dict, tooltip: list[dict]) -> dict:
    return {"title": title, "mark": {"type": "bar"},
            "encoding": {"x": x, "y": y, "color": color, "tooltip": tooltip}}


figures = _figures(ctx.store, ctx.store.key, backend, start, end, st.session_state["spend_version"][0])
totals = figures["totals"]
st.caption(
    "What Runway charged for each task, on the day it finished: a failed or cancelled task counts what it "
    "was actually charged (usually 0), never its estimate. **Removed tasks still count**: removing hides a "
    "task, what it cost stays spent"
    + (f" ({totals.removed} removed task(s) here, {totals.removed_credits:,.0f} credits)." if totals.removed
       else ".")
    + (f" {totals.no_cost_reported} finished task(s) had no cost reported by the API and count as 0."
       if totals.no_cost_reported else "")
    + (" These are the simulator's credits, not an account's." if ctx.backend.is_simulator else ""))

metrics = st.columns(3)
metrics[0].metric("Credits spent", f"{totals.credits:,.0f}")
metrics[1].metric("Finished tasks", f"{totals.tasks:,}")
organization = ui.organization(ctx.backend)
metrics[2].metric("Credit balance now", f"{organization['creditBalance']:,}" if organization else "—")

if not figures["rows"]:
    st.info(f"No task finished from {start} to {end}.")
else:
    labels = {**spend.DIMENSIONS}
    stack = st.segmented_control("Stack by", list(labels), format_func=labels.get, default="model",
                                 required=True, key="stack")
    # Specs with the aggregates as data: the same charts Altair made, without loading Altair.
    summed = {"field": "credits", "type": "quantitative", "aggregate": "sum", "title": "Credits"}
    st.vega_lite_chart(figures["daily"][stack], _bars(
        # The whole period on the axis, so a day's bar is a day wide however few days had spend.
        None, {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "Day (UTC)",
               "scale": {"domain": [start.isoformat(), (end + timedelta(days=1)).isoformat()]}}, summed,
        # Below the bars, so a phone's narrow chart keeps its width for them.
        {"field": stack, "type": "nominal", "title": labels[stack], "legend": {"orient": "bottom", "columns": 3}},
        [{"field": "day", "type": "nominal"}, {"field": stack, "type": "nominal"},
         {**summed, "title": "credits", "format": ",.0f"}]), width="stretch")
    columns = st.columns(3)
    for column, (dimension, label) in zip(columns, spend.DIMENSIONS.items()):
        column.vega_lite_chart(figures["by"][dimension], _bars(
            f"By {label.lower()}", {"field": "credits", "type": "quantitative", "title": "Credits"},
            {"field": dimension, "type": "nominal", "title": None, "sort": "-x"},
            {"field": dimension, "type": "nominal", "legend": None},
            [{"field": dimension, "type": "nominal"}, {"field": "credits", "type": "quantitative", "format": ",.0f"},
             {"field": "tasks", "type": "quantitative"}]), width="stretch")

st.subheader("Balance over time")
if organization is None:
    st.info("The API did not give a credit balance, so the balance over time cannot be drawn.")
else:
    balance = spend.balance_history(float(organization["creditBalance"]), ctx.store, start, today, backend)
    st.vega_lite_chart(balance, {
        "mark": {"type": "line", "point": True, "interpolate": "step-after"},
        "encoding": {
            "x": {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": "End of day (UTC)"},
            "y": {"field": "balance", "type": "quantitative", "title": "Credits", "scale": {"zero": False}},
            "tooltip": [{"field": "day", "type": "nominal"},
                        {"field": "balance", "type": "quantitative", "format": ",.0f"}]}}, width="stretch")
    st.caption("Walked back from today's balance through the dashboard's own spend. Top-ups are not known to "
               "the dashboard, and spend made elsewhere is not in it: before a top-up the real balance was lower.")

st.subheader("Table")
table_top = st.columns([4, 1], vertical_alignment="bottom")
more = (f" The newest {TABLE_ROWS:,} of {figures['rows']:,} are shown; the CSV has them all."
        if figures["rows"] > TABLE_ROWS else "")
table_top[0].caption("One row per day, model, task type and teammate; `removed` counts removed tasks among them."
                     + more)
table_top[1].link_button("Export CSV", downloads.spend_link(start, end, f"runway-spend-{start}-{end}.csv", backend),
                         icon="⬇️", width="stretch", disabled=not figures["rows"])
st.dataframe(figures["table"], hide_index=True, width="stretch", height=300)

st.subheader("Monthly budgets")
now = datetime.now(timezone.utc)
budgets = spend.budget_table(ctx.store, now, backend)
if budgets.empty:
    st.caption("No budgets yet. A teammate with one is warned on every form before a submission that would "
               "take them past it this month.")
else:
    st.caption(f"Spent in {now:%B %Y} (UTC): what was charged plus the estimates of tasks still running. The "
               "forms warn before a submission that would go over, and send only when asked to.")
    st.dataframe(budgets, hide_index=True, width="stretch")
with st.form("budget"):
    row = st.columns([3, 2, 1, 1], vertical_alignment="bottom")
    who = row[0].text_input("Teammate", value=ctx.teammate, max_chars=ui.NAME_MAX)
    credits = row[1].number_input("Monthly budget (credits)", min_value=0, value=1000, step=100)
    save = row[2].form_submit_button("Set budget")
    drop = row[3].form_submit_button("Remove")
if save or drop:
    if not who.strip():
        st.warning("Name the teammate whose budget this is.")
    else:
        ctx.store.set_budget(who.strip(), None if drop else float(credits))
        st.rerun()


# Ten minutes: Runway counts per day, and a page redrawn as tasks end must not wait on several calls each time.
@st.cache_data(ttl=600, max_entries=8, show_spinner="Asking Runway for its usage…")
def _runway_usage(_backend, backend_name: str, start: date, end: date):
    try:
        with _backend.client() as client:
            return spend.runway_usage(client, start, end)
    except RunwayError as exc:
        return exc.user_message


st.subheader("Cross-check with Runway's usage")
st.caption("Runway's own count (`POST /v1/organization/usage`, 90 days a call) of credits per model per day, "
           "against this backend's tasks here. A difference is spend made outside the dashboard (another "
           "tool, a teammate's own script), or a task charged on one side of midnight and seen here after it."
           + (" On the simulator this checks the simulator's own count." if ctx.backend.is_simulator else ""))
theirs = _runway_usage(ctx.backend, ctx.backend.name, start, end)
if isinstance(theirs, str):
    st.warning(f"Runway's usage could not be read: {ui.plain(theirs)}", icon="⚠️")
else:
    ours = spend.dashboard_usage(ctx.store, ctx.backend.name, start, end)
    differences = spend.usage_differences(ours, theirs)
    if differences.empty:
        st.success(f"Runway's usage matches the dashboard's tasks, day by day and model by model "
                   f"({theirs['runway'].sum():,.0f} credits).", icon="✅")
    else:
        st.warning(f"{len(differences)} day and model pair(s) differ: Runway counts {theirs['runway'].sum():,.0f} "
                   f"credits, the dashboard's tasks {ours['dashboard'].sum():,.0f} "
                   f"(difference {differences['difference'].sum():+,.0f}).", icon="🔎")
        # The largest first, and a readable number of them: a year with no usage on one side differs every day.
        largest = differences.reindex(differences["difference"].abs().sort_values(ascending=False).index)
        if len(largest) > DIFFERENCE_ROWS:
            st.caption(f"The {DIFFERENCE_ROWS} largest differences of {len(largest):,} are shown.")
        st.dataframe(largest.head(DIFFERENCE_ROWS), hide_index=True, width="stretch")
