"""What every page shares: where runs and data live, cached resources, the sidebar."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.data import DataConfig, DataError, Dataset, load_dataset, resolve_data_dir
from core.runs import EventReader, Run, list_runs, resolve_run
from core.train import choose_device, device_name

RUNNING = ("running", "starting")


def runs_root() -> Path:
    return Path(os.environ.get("CIFAR_RUNS", "runs"))


def data_dir() -> Path:
    return resolve_data_dir()


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    return device_name(choose_device("auto"))


@st.cache_resource(show_spinner="Decoding the images once (later loads come from the cache)…")
def _dataset(path: str) -> Dataset:
    return load_dataset(DataConfig(data_dir=path, download=False))


def dataset() -> Dataset | None:
    """The dataset, or None when there is none (the error is not cached, so a retry looks again)."""
    try:
        return _dataset(str(data_dir()))
    except DataError:
        return None


def dataset_error() -> str:
    try:
        load_dataset(DataConfig(data_dir=str(data_dir()), download=False))
    except DataError as exc:
        return str(exc)
    return ""


def forget_dataset() -> None:
    _dataset.clear()


def events(run: Run) -> list[dict]:
    """The run's events, parsing only what was appended since this session last looked."""
    readers = st.session_state.setdefault("event_readers", {})
    reader = readers.get(str(run.path))
    if reader is None:
        reader = readers[str(run.path)] = EventReader(run.events_file)
    return reader.read()


def active_run() -> Run | None:
    """This session's run if it still exists, else the newest one training, else the newest one.

    A refreshed or second tab is a new session: it finds the run still going (or just finished),
    and keeps showing it after it ends.
    """
    run_id = st.session_state.get("active_run")
    if run_id:
        try:
            run = resolve_run(runs_root(), run_id)
            if run.path.is_dir():
                return run
        except ValueError:
            pass
    runs = list_runs(runs_root())
    run = next((r for r in runs if r.state() in RUNNING), runs[0] if runs else None)
    if run is not None:
        st.session_state["active_run"] = run.id
    return run


def sidebar() -> None:
    with st.sidebar:
        st.caption("Device")
        st.markdown(f"**{device_label()}**")
        st.caption("Data")
        ds = dataset()
        st.markdown(f"**{ds.description}**" if ds else "**no data found** — see the Data page")
        run = active_run()
        st.caption("Active run")
        st.markdown(f"**{run.id}** · {run.state()}" if run else "none")


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"
