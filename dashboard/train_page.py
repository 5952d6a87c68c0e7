import os

import torch
import streamlit as st

from core.evaluate import TTA
from core.launcher import start_training
from core.models import MODELS
from core.train import DEVICES, PRESET_DESCRIPTIONS, PRESETS, SCHEDULES, ConfigError, TrainConfig
from dashboard.live import live_view
from dashboard.common import RUNNING, active_run, data_dir, dataset, events, runs_root

LABELS = {"model": "Model", "width": "Width", "epochs": "Epochs", "batch_size": "Batch size", "lr": "Learning rate",
          "momentum": "Momentum", "weight_decay": "Weight decay", "schedule": "LR schedule",
          "augment": "Augmentation", "device": "Device", "seed": "Seed", "log_interval": "Log every",
          "threads": "CPU threads", "nesterov": "Nesterov momentum", "label_smoothing": "Label smoothing",
          "decay_weights_only": "Decay weights only", "ema": "Weight averaging (EMA decay)",
          "tta": "Test-time augmentation", "channels_last": "Channels-last layout", "bf16": "bf16 autocast",
          "compile": "torch.compile", "translate": "Translate (pixels)", "norm_lr_scale": "Norm lr scale",
          "freeze_norm_scales": "Freeze norm scales"}


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
                                 help="Channels of the first layer: for net, conv1's outputs = conv2's inputs (the "
                                      "tutorial's exercise); widenet and fastnet widen from it; 1–512"),
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
        with st.expander("Speed and accuracy options (what the fast presets set)"):
            d, e, f = st.columns(3)
            values.update(
                nesterov=d.checkbox(LABELS["nesterov"], value=base.nesterov, help="needs a momentum above 0"),
                label_smoothing=d.number_input(LABELS["label_smoothing"], value=base.label_smoothing, step=0.05,
                                               format="%.2f", help="0 ≤ smoothing < 1"),
                decay_weights_only=d.checkbox(LABELS["decay_weights_only"], value=base.decay_weights_only,
                                              help="Weight decay on conv/linear weights, not biases or norms"),
                ema=e.number_input(LABELS["ema"], value=base.ema, step=0.01, format="%.3f",
                                   help="Evaluate and save a moving average of the weights; 0 turns it off"),
                tta=e.selectbox(LABELS["tta"], TTA, index=TTA.index(base.tta),
                                help="Average the predictions over mirrored (and shifted) copies"),
                channels_last=f.checkbox(LABELS["channels_last"], value=base.channels_last,
                                         help="NHWC memory layout: faster convolutions on CPUs and GPUs"),
                bf16=f.checkbox(LABELS["bf16"], value=base.bf16, help="bfloat16 autocast; pays off on GPUs and on CPUs with native bf16 (AVX-512 BF16, AMX)"),
                compile=f.checkbox(LABELS["compile"], value=base.compile,
                                   help="Compiles the model first: tens of seconds, counted as training time"),
                translate=d.number_input(LABELS["translate"], value=base.translate, step=1,
                                         help="With augmentation: random shift of up to this many pixels, 0–8"),
                norm_lr_scale=e.number_input(LABELS["norm_lr_scale"], value=base.norm_lr_scale, step=1.0,
                                             format="%.1f", help="Learning-rate multiplier for BatchNorm "
                                                                 "parameters (airbench uses 64); above 0"),
                freeze_norm_scales=f.checkbox(LABELS["freeze_norm_scales"], value=base.freeze_norm_scales,
                                              help="BatchNorm scales stay 1; only their biases learn"),
            )
        gpus = torch.cuda.device_count()
        processes = c.number_input(
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
            st.error(f"**{LABELS.get(field, field)}**: {message}")
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
    st.rerun()


st.title("Train")
run = active_run()
if run is not None:
    refresh = 1.0 if run.state(events(run)) in RUNNING else None
    st.fragment(run_every=refresh)(live_view)(run)
with st.expander("New run", expanded=run is None, icon=":material/add:"):
    config_form()
