import torch
import streamlit as st

from core.launcher import resume_training, start_training, stop_training
from core.models import MODELS
from core.runs import curves, last_status, log_tail
from core.train import DEVICES, PRESET_DESCRIPTIONS, PRESETS, SCHEDULES, ConfigError, TrainConfig
from dashboard.charts import Series, accuracy_figure, loss_figure
from dashboard.common import RUNNING, active_run, data_dir, dataset, events, fmt_seconds, runs_root

LABELS = {"model": "Model", "width": "Width", "epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
          "momentum": "Momentum", "weight_decay": "Weight decay", "schedule": "LR schedule",
          "augment": "Augmentation", "device": "Device", "seed": "Seed", "log_interval": "Log every",
          "threads": "CPU threads"}


def available_devices() -> list[str]:
    found = ["auto", "cpu"]
    found += ["cuda"] if torch.cuda.is_available() else []
    found += ["mps"] if torch.backends.mps.is_available() else []
    return [d for d in DEVICES if d in found]


def config_form() -> None:
    preset = st.selectbox("Preset", list(PRESETS), format_func=lambda p: f"{p} — {PRESET_DESCRIPTIONS[p]}")
    base = PRESETS[preset]
    models, schedules, devices = list(MODELS), list(SCHEDULES), available_devices()
    with st.form(f"config-{preset}"):  # keyed by preset: choosing one refills the form
        a, b, c = st.columns(3)
        values = dict(
            model=a.selectbox(LABELS["model"], models, index=models.index(base.model),
                              format_func=lambda m: f"{m} — {MODELS[m].description}"),
            width=a.number_input(LABELS["width"], value=base.width, step=1,
                                 help="Channels out of conv1 and into conv2 (the tutorial's exercise); 1–512"),
            epochs=a.number_input(LABELS["epochs"], value=base.epochs, step=1, help="1–1000"),
            seed=a.number_input(LABELS["seed"], value=base.seed, step=1, help="Same seed, same run (on a CPU)"),
            batch_size=b.number_input(LABELS["batch_size"], value=base.batch_size, step=1, help="1–65536"),
            lr=b.number_input(LABELS["lr"], value=base.lr, step=0.001, format="%.5f", help="above 0, at most 10"),
            momentum=b.number_input(LABELS["momentum"], value=base.momentum, step=0.05, format="%.3f",
                                    help="0 ≤ momentum < 1"),
            weight_decay=c.number_input(LABELS["weight_decay"], value=base.weight_decay, step=0.0001,
                                        format="%.5f", help="0–1"),
            schedule=c.selectbox(LABELS["schedule"], schedules, index=schedules.index(base.schedule)),
            device=c.selectbox(LABELS["device"], devices, index=devices.index(base.device)
                               if base.device in devices else 0),
            augment=c.checkbox("Augment (random crop + horizontal flip)", value=base.augment),
        )
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return
    try:
        config = TrainConfig.from_dict({**base.to_dict(), **values})
    except ConfigError as exc:
        for field, message in exc.problems.items():
            st.error(f"**{LABELS.get(field, field)}**: {message}")
        return
    if dataset() is None:
        st.error("There is no data to train on yet; get it on the Data page first.")
        return
    run = start_training(config, runs_root(), data_dir=str(data_dir()), preset=preset)
    st.session_state["active_run"] = run.id
    st.rerun()


def live_view(run) -> None:
    evs = events(run)
    state = run.state(evs)
    start = last_status([e for e in evs if e.get("status") == "running"])
    c = curves(evs)
    steps = [e for e in evs if e.get("type") == "step"]
    st.subheader(f"Run {run.id}")
    total = start.get("epochs", 0) * start.get("steps_per_epoch", 0)
    done_steps = steps[-1]["global_step"] if steps else 0
    if state in RUNNING or total:
        epoch = steps[-1]["epoch"] if steps else 1
        step = steps[-1]["step"] if steps else 0
        st.progress(min(done_steps / total, 1.0) if total else 0.0,
                    text=f"{state} · epoch {epoch}/{start.get('epochs', '?')} · step {step}/"
                         f"{start.get('steps_per_epoch', '?')}" if total else f"{state} · loading data…")
    ips = steps[-1]["images_per_s"] if steps else None
    batch = run.summary()["batch_size"] or 1
    left = (total - done_steps) * batch / ips if ips and state in RUNNING else None
    m = st.columns(4)
    m[0].metric("Images / s", f"{ips:,.0f}" if ips else "—")
    m[1].metric("Training time", fmt_seconds(steps[-1]["train_seconds"]) if steps else "—")
    m[2].metric("Time left", fmt_seconds(left) if left is not None else "—")
    m[3].metric("Test accuracy", f"{100 * c['test_accuracy'][-1]:.1f} %" if c["test_accuracy"] else "—",
                help="after the last finished epoch")

    x_axis = st.radio("x axis", ["images seen", "steps"], horizontal=True, key=f"x-{run.id}",
                      label_visibility="collapsed")
    x = c["images_seen"] if x_axis == "images seen" else c["global_step"]
    charts = st.columns([3, 2])
    charts[0].plotly_chart(loss_figure([Series(run.id, x, c["loss"])], x_title=x_axis), width="stretch",
                           key=f"loss-{run.id}")
    charts[1].plotly_chart(accuracy_figure([Series(run.id, c["epoch"], c["test_accuracy"])]), width="stretch",
                           key=f"acc-{run.id}")

    final = last_status(evs)
    if state == "done":
        st.success(f"Finished: **{100 * final['test_accuracy']:.2f} %** test accuracy after "
                   f"{fmt_seconds(final.get('train_seconds'))} of training.")
        st.page_link("dashboard/runs_page.py", label="Compare it with other runs", icon=":material/table_chart:")
    elif state == "failed":
        st.error(f"Training failed: {final.get('message') or run.failure_message()}")
    elif state == "diverged":
        st.error(f"Training diverged: {final.get('message')}")
    elif state in ("stopped", "interrupted"):
        st.warning("Stopped by request; its last checkpoint is kept." if state == "stopped" else
                   "The training process ended without finishing (killed or the machine restarted); "
                   "its last checkpoint is kept.")
    with st.expander("Log", expanded=state in RUNNING):
        st.code("\n".join(log_tail(run)) or "(nothing yet)", language=None)

    if state in RUNNING and st.button("Stop", icon=":material/stop:", key=f"stop-{run.id}"):
        if stop_training(run):
            st.toast("Stopping: the run saves a checkpoint and ends.")
    if state in ("stopped", "interrupted") and run.checkpoint_file.exists():
        if st.button("Resume", icon=":material/resume:", key=f"resume-{run.id}"):
            resume_training(run)
            st.rerun()
    if st.session_state.get("shown_state", {}).get(run.id, state) != state:
        st.session_state.setdefault("shown_state", {})[run.id] = state
        st.rerun()  # the run changed state: redraw the page (and stop or start refreshing)
    st.session_state.setdefault("shown_state", {})[run.id] = state


st.title("Train")
config_form()
run = active_run()
if run is not None:
    st.divider()
    refresh = 1.0 if run.state() in RUNNING else None
    st.fragment(run_every=refresh)(live_view)(run)
