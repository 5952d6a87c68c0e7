import datetime as dt

import pandas as pd
import streamlit as st

from core.charts import Series, accuracy_figure, accuracy_vs_time_figure, loss_figure
from core.events import ACTIVE_STATES, curves
from core.launcher import resume_training
from core.run_table import row
from core.runs import delete_run, list_runs, rename_run
from dashboard.common import events, linked, literal, loaded_model, report_button, run_label, runs_root
from dashboard.pages import icon, page
from dashboard.present import chart


def runs_table(runs: list, rows: list[dict]) -> list:
    """The runs as a sortable table; returns the runs picked in it (else the linked or newest one)."""
    table = pd.DataFrame({  # numbers stay numbers, so the columns sort as numbers; column_config formats them
        "name": [s["id"] for s in rows],
        "state": [s["state"] for s in rows],
        "preset": [s["preset"] or "—" for s in rows],
        "config": [f"{s['model']} w{s['width']} · batch {s['batch_size']} · lr {s['lr']}" if s["model"] else "—"
                   for s in rows],
        "epochs done": [s["epochs_done"] for s in rows],
        "epochs": [s["epochs"] for s in rows],
        "best test acc (%)": [round(100 * s["best_accuracy"], 2) if s["best_accuracy"] is not None else None
                              for s in rows],
        "training time (s)": [round(s["train_seconds"], 1) for s in rows],
        "device": [s["device"] or "—" for s in rows],
        "started": [dt.datetime.fromtimestamp(s["started"]) for s in rows],
    })
    picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", width="stretch",
                          key="runs-table", column_config={
                              "best test acc (%)": st.column_config.NumberColumn(format="%.2f %%"),
                              "training time (s)": st.column_config.NumberColumn(format="%.1f s"),
                              "started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
    by_id = {r.id: r for r in runs}
    selected = [runs[i] for i in picked.selection.rows] or [linked("run", by_id, "the run") or runs[0]]
    st.caption("Select rows to compare them; the newest run (or the linked one) is shown when none is selected.")
    if len(selected) == 1:
        st.query_params["run"] = selected[0].id
    return selected


def curves_compared(selected: list) -> None:
    loss, accuracy = [], []
    for run in selected:
        c = curves(events(run))
        loss.append(Series(run.id, c["images_seen"], c["loss"]))
        accuracy.append(Series(run.id, c["epoch"], c["test_accuracy"], c["val_accuracy"]))
    left, right = st.columns([3, 2])
    chart(left, loss_figure(loss), width="stretch")
    chart(right, accuracy_figure(accuracy), width="stretch")


def accuracy_for_time(selected: list, rows: list[dict]) -> None:
    """Which of the picked runs bought its accuracy cheapest."""
    chosen = {r.id for r in selected}
    points = [s for s in rows if s["id"] in chosen and s["best_accuracy"] is not None and s["train_seconds"] > 0]
    if len(points) > 1:
        chart(st, accuracy_vs_time_figure([p["id"] for p in points], [p["train_seconds"] for p in points],
                                                [p["best_accuracy"] for p in points]), width="stretch")


def actions(run, state: str) -> None:
    """Downloads (model, metrics, report, exports), Evaluate, Resume."""
    a, b, c, d = st.columns(4)
    if run.model_file.exists():
        a.download_button("Download model.pth", run.model_file.read_bytes(), file_name=f"{run.id}.pth",
                          icon=":material/download:")
    metrics = run.metrics()
    if metrics:
        per_class = pd.DataFrame({"class": list(metrics["per_class"]), "accuracy": list(metrics["per_class"].values())})
        per_class.loc[len(per_class)] = ["(overall)", metrics["accuracy"]]
        b.download_button("Download metrics (CSV)", per_class.to_csv(index=False), file_name=f"{run.id}-metrics.csv",
                          mime="text/csv", icon=":material/table:")
        report_button(d, run)
    if run.model_file.exists():
        export_buttons(run)
    if state == "done" and c.button("Evaluate", icon=icon("evaluate")):
        st.session_state["eval_choice"] = run_label(run.id)
        st.switch_page(page("evaluate"))
    if state in ("stopped", "interrupted") and run.checkpoint_file.exists():
        if c.button("Resume", icon=":material/resume:"):
            resume_training(run)
            st.session_state["active_run"] = run.id
            st.switch_page(page("train"))


def export_buttons(run) -> None:
    """The model as one file that runs without this project (core/export.py), made only when clicked."""
    from core.export import FORMATS, SUFFIXES, export_bytes, missing

    try:
        loaded = loaded_model(run.model_file)
    except ValueError as exc:  # CheckpointError: a damaged or foreign model.pth
        st.caption(literal(f"No export: {exc}"))
        return
    labels = {"torchscript": "Export TorchScript (.pt)", "onnx": "Export ONNX (.onnx)"}
    for place, fmt in zip(st.columns(4), FORMATS):
        why_not = missing(fmt)
        place.download_button(labels[fmt], data=lambda fmt=fmt: export_bytes(loaded, fmt),
                              file_name=f"{run.id}{SUFFIXES[fmt]}", mime="application/octet-stream",
                              icon=":material/output:", disabled=why_not is not None, key=f"export-{fmt}-{run.id}",
                              help=why_not or "Takes float32 [N, 3, 32, 32] RGB in 0-1 (the normalisation is inside) "
                                              "and returns logits; the classes are in the file")


def rename_and_delete(run) -> None:
    with st.form(f"rename-{run.id}"):
        new_name = st.text_input("New name", value=run.id, max_chars=100,
                                 help="Letters, digits, '.', '_' and '-'")
        if st.form_submit_button("Rename"):
            try:
                renamed = rename_run(runs_root(), run.id, new_name.strip())
                if st.session_state.get("active_run") == run.id:
                    st.session_state["active_run"] = renamed.id
                st.rerun()
            except ValueError as exc:
                st.error(literal(exc))
    with st.expander("Delete this run"):
        confirm = st.checkbox(f"Yes, delete {run.id} and all its files", key=f"confirm-{run.id}")
        if st.button("Delete", type="primary", disabled=not confirm, key=f"delete-{run.id}"):
            try:
                delete_run(runs_root(), run.id)
                st.session_state.pop("active_run", None)
                st.rerun()
            except ValueError as exc:
                st.error(literal(exc))


st.title("Runs")
runs = list_runs(runs_root())
if not runs:
    st.info("No runs yet.")
    st.page_link(page("train"), label="Train a model")
    st.stop()
rows = [row(r) for r in runs]
selected = runs_table(runs, rows)
curves_compared(selected)
if len(selected) != 1:
    accuracy_for_time(selected, rows)
    st.stop()
run = selected[0]
state = next(s for s in rows if s["id"] == run.id)["state"]
st.subheader(f"Run {run.id}")
actions(run, state)
if state in ACTIVE_STATES:
    st.caption("Stop the run on the Train page to rename or delete it.")
    st.stop()
rename_and_delete(run)
