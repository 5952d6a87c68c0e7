"""The Train page's live view of one run: redrawn whole, once a second, while the run trains."""
import streamlit as st

from core.charts import Series, accuracy_figure, loss_figure
from core.events import ACTIVE_STATES, curves, last_status, progress
from core.launcher import resume_training, stop_training
from core.runs import log_tail
from dashboard.common import events, fmt_seconds, literal, run_label
from dashboard.pages import icon, page
from dashboard.present import chart


def live_view(run) -> None:
    """One run as it trains and after: progress, curves, how it ended, its log, and stop or resume."""
    evs = events(run)
    state = run.state(evs)
    c = curves(evs)
    st.subheader(f"Run {run.id}")
    _progress(state, progress(evs), c)
    _curves(run, c)
    _outcome(run, state, last_status(evs))
    with st.expander("Log", expanded=state in ACTIVE_STATES):
        # wrapped: the first line names the data and run folders, whose paths ran behind a scrollbar
        st.code("\n".join(log_tail(run)) or "(nothing yet)", language=None, wrap_lines=True)
    _controls(run, state)
    _rerun_when_changed("shown_state", run.id, state)  # and stop or start refreshing


def _progress(state: str, where, c: dict) -> None:
    """The progress bar while it trains, and its speed, time so far and left, and last test accuracy."""
    if state in ACTIVE_STATES or where.total_steps:
        text = (f"{state} · epoch {where.epoch}/{where.epochs} · step {where.step}/{where.steps_per_epoch}"
                if where.total_steps else f"{state} · loading data…")
        st.progress(where.fraction, text=text)
    left = where.seconds_left if state in ACTIVE_STATES else None
    m = st.columns(4)
    m[0].metric("Images / s", f"{where.images_per_s:,.0f}" if where.images_per_s else "—")
    m[1].metric("Training time", fmt_seconds(where.train_seconds) if where.train_seconds is not None else "—")
    m[2].metric("Time left", fmt_seconds(left) if left is not None else "—")
    m[3].metric("Test accuracy", f"{100 * c['test_accuracy'][-1]:.1f} %" if c["test_accuracy"] else "—",
                help="after the last finished epoch")


def _curves(run, c: dict) -> None:
    x_axis = st.radio("x axis", ["images seen", "steps"], horizontal=True, key=f"x-{run.id}",
                      label_visibility="collapsed")
    x = c["images_seen"] if x_axis == "images seen" else c["global_step"]
    charts = st.columns([3, 2])
    chart(charts[0], loss_figure([Series(run.id, x, c["loss"])], x_title=x_axis), width="stretch",
          key=f"loss-{run.id}")
    accuracy = Series(run.id, c["epoch"], c["test_accuracy"], c["val_accuracy"])
    chart(charts[1], accuracy_figure([accuracy]), width="stretch", key=f"acc-{run.id}")


def _outcome(run, state: str, final: dict) -> None:
    """How the run ended (finished, failed, diverged, stopped or interrupted), and where to go from there."""
    if state == "done":
        st.success(f"Finished: **{100 * final['test_accuracy']:.2f} %** test accuracy after "
                   f"{fmt_seconds(final.get('train_seconds'))} of training.")
        left, right = st.columns(2)
        if left.button("Evaluate this run", icon=icon("evaluate"), key=f"eval-{run.id}"):
            st.session_state["eval_choice"] = run_label(run.id)  # preselected on the Evaluate page
            st.switch_page(page("evaluate"))
        right.page_link(page("runs"), label="Compare it with other runs")
    elif state == "failed":
        st.error(f"Training failed: {literal(final.get('message') or run.failure_message())}")
    elif state == "diverged":
        st.error(f"Training diverged: {literal(final.get('message'))}")
    elif state in ("stopped", "interrupted"):
        why = "Stopped by request" if state == "stopped" else \
            "The training process ended without finishing (killed or the machine restarted)"
        kept = "its last checkpoint is kept." if run.checkpoint_file.exists() else \
            "it ended before its first checkpoint, so there is nothing to resume: start a new run."
        st.warning(f"{why}; {kept}")


def _controls(run, state: str) -> None:
    if state in ACTIVE_STATES and st.button("Stop training", icon=":material/stop:", key=f"stop-{run.id}"):
        if stop_training(run):
            st.toast("Stopping: the run saves a checkpoint and ends.")
    if state in ("stopped", "interrupted") and run.checkpoint_file.exists():
        if st.button("Resume training", icon=":material/resume:", key=f"resume-{run.id}"):
            resume_training(run)
            st.rerun()


def shown_small(run) -> None:
    """A run in a corner (the Overview): its progress and loss curve, redrawn whole by the caller's fragment."""
    evs = events(run)
    where, c = progress(evs), curves(evs)
    text = f"{run.id} · epoch {where.epoch}/{where.epochs}" if where.total_steps else f"{run.id} · loading data…"
    st.progress(where.fraction, text=text)
    figure = loss_figure([Series(run.id, c["images_seen"], c["loss"])])
    figure.update_layout(height=260, title=None, showlegend=False)
    chart(st, figure, width="stretch", key=f"small-loss-{run.id}")
    if c["test_accuracy"]:
        st.caption(f"Test accuracy after epoch {c['epoch'][-1]}: {100 * c['test_accuracy'][-1]:.1f} %")
    _rerun_when_changed("shown_small_state", run.id, run.state(evs))  # the page around it changes too


def _rerun_when_changed(store: str, run_id: str, state: str) -> None:
    """Remember (in session_state[store]) the run's state as this session last drew it; when it has changed since
    (it finished, stopped or started), rerun the whole page, not only the fragment drawing the run."""
    seen = st.session_state.setdefault(store, {})
    changed = seen.get(run_id, state) != state
    seen[run_id] = state
    if changed:
        st.rerun()
