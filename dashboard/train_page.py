import contextlib
import os
from dataclasses import fields

import streamlit as st
import torch

from core.config import PRESET_DESCRIPTIONS, PRESETS, ConfigError, TrainConfig
from core.devices import available_devices, preset_here
from core.events import ACTIVE_STATES
from core.launcher import start_training
from core.models import MODELS
from core.runs import list_runs
from dashboard.common import active_run, data_dir, dataset, events, linked, literal, runs_root
from dashboard.live import live_view

LABEL = {f.name: f.metadata["label"] for f in fields(TrainConfig)}


def setting_input(column, f, value, choices: list[str] | None = None, **options):
    """The form's widget for one TrainConfig field, from the field's own label, help and choices."""
    label, help = f.metadata["label"], f.metadata["help"]
    if f.type == "bool":
        return column.checkbox(label, value=value, help=help)
    choices = choices or list(f.metadata["choices"] or [])
    if choices:
        return column.selectbox(label, choices, index=choices.index(value) if value in choices else 0, help=help,
                                **options)
    if f.type == "int":
        return column.number_input(label, value=value, step=1, help=help)
    return column.number_input(label, value=float(value), step=f.metadata["step"], format=f.metadata["format"],
                               help=help)


def config_form() -> None:
    preset = st.selectbox("Preset", list(PRESETS), format_func=lambda p: f"{p} — {PRESET_DESCRIPTIONS[p]}")
    base = preset_here(preset)  # bf16 off where this CPU only emulates it
    special = {"device": dict(choices=available_devices()),  # only what exists here
               "model": dict(format_func=lambda m: f"{m} — {MODELS[m].description}")}
    with st.form(f"config-{preset}"):  # keyed by preset: choosing one refills the form
        values = {}
        for advanced in (False, True):  # the tutorial's own settings first, the speed options in an expander
            group = [f for f in fields(TrainConfig) if f.metadata["advanced"] == advanced]
            place = st.expander("Speed and accuracy options (what the fast presets set)") if advanced \
                else contextlib.nullcontext()
            with place:
                columns = st.columns(3)
                for i, f in enumerate(group):
                    values[f.name] = setting_input(columns[i % 3], f, getattr(base, f.name), **special.get(f.name, {}))
        gpus = torch.cuda.device_count()
        processes = st.columns(3)[0].number_input(
            "Processes (DDP)", value=1, step=1,
            help=f"One per GPU ({gpus} visible), started with torchrun; batch size and learning rate stay global"
            if gpus > 1 else "Several CPU processes with DistributedDataParallel (gloo), to try it out; "
                             "batch size and learning rate stay global")
        submitted = st.form_submit_button("Start training", type="primary", icon=":material/play_arrow:")
    if not submitted:
        return
    try:
        config = TrainConfig.from_dict({**base.to_dict(), **values})
    except ConfigError as exc:
        for field, message in exc.problems.items():
            st.error(f"**{LABEL.get(field, field)}**: {literal(message)}")
        return
    limit = max(torch.cuda.device_count(), os.cpu_count() or 1)
    if not 1 <= processes <= limit:
        st.error(f"**Processes (DDP)**: must be between 1 and {limit} (GPUs or CPU cores on this machine)")
        return
    if processes > 1 and config.batch_size < processes:
        st.error(f"**Batch size**: must be at least the number of processes ({processes}): each takes a share")
        return
    if dataset() is None:
        st.error("There is no data to train on yet; get it on the Data page first.")
        return
    run = start_training(config, runs_root(), data_dir=str(data_dir()), preset=preset, processes=int(processes))
    st.session_state["active_run"] = run.id
    st.query_params["run"] = run.id  # the address follows, or its old ?run= would switch back on the rerun
    st.rerun()


st.title("Train")
asked = linked("run", {r.id: r for r in list_runs(runs_root())}, "the run")
if asked is not None:
    st.session_state["active_run"] = asked.id
run = active_run()
if run is not None:
    st.query_params["run"] = run.id
if run is not None:
    refresh = 1.0 if run.state(events(run)) in ACTIVE_STATES else None
    st.fragment(run_every=refresh)(live_view)(run)
with st.expander("New run", expanded=run is None, icon=":material/add:"):
    config_form()
