"""What every page shares: where runs and data live, cached resources, the sidebar, links, one classified picture."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image, ImageOps

from core import ood
from core.charts import Familiarity, probability_figure
from core.data import DataConfig, DataError, Dataset, load_dataset, resolve_data_dir
from core.devices import choose_device, device_name
from core.events import ACTIVE_STATES
from core.images import ImageError, enlarge, open_image, side_by_side, to_rgb, to_uint8_tensor
from core.interpret import Prediction, overlay, saliency, top_k
from core.launcher import PROJECT_ROOT
from core.runs import EventReader, Run, list_runs, resolve_run
from dashboard import present
from dashboard.present import chart

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]  # what the pages take as a photo


def runs_root() -> Path:
    return Path(os.environ.get("CIFAR_RUNS", "runs"))


def data_dir() -> Path:
    return resolve_data_dir()


@st.cache_resource(show_spinner=False)
def device_label() -> str:
    return device_name(choose_device("auto"))


@st.cache_resource(show_spinner="Decoding the images once (later loads come from the cache)…")
def _dataset(path: str) -> Dataset | str:
    """The dataset, or the reason there is none (cached too: a tree with a bad file is not re-decoded
    on every rerun; the Data page's "Check again" and a finished download clear it)."""
    try:
        return load_dataset(DataConfig(data_dir=path, download=False))
    except DataError as exc:
        return str(exc)


def dataset() -> Dataset | None:
    found = _dataset(str(data_dir()))
    return found if isinstance(found, Dataset) else None


def literal(text: str) -> str:
    """`text` for st.error & co. exactly as written: every ASCII punctuation mark backslash-escaped (CommonMark's
    rule), so paths like train/<class>/*.jpg are not eaten as italics or HTML, nor :names: as icons."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(text))


def dataset_error() -> str:
    found = _dataset(str(data_dir()))
    return found if isinstance(found, str) else ""


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
    run = next((r for r in runs if r.state() in ACTIVE_STATES), runs[0] if runs else None)
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
        st.markdown(f"**{run.id}** · {run.state(events(run))}" if run else "none")


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


# ---- models for the Evaluate and Classify pages ----

def models_dir() -> Path:
    return Path(os.environ.get("CIFAR_MODELS", PROJECT_ROOT / "models"))


@dataclass(frozen=True)
class ModelChoice:
    """A model a page can pick: the shipped one, a finished run's, or another file in models/."""
    kind: str  # "default" | "run" | "file"
    name: str  # "default", the run's id, or the file's name in models/
    path: Path  # its weights

    @property
    def label(self) -> str:
        """What the pages' pickers show (and what a session remembers as its choice)."""
        return {"default": DEFAULT_MODEL, "run": f"Run {self.name}", "file": f"File models/{self.name}"}[self.kind]

    @property
    def link(self) -> tuple[str, str]:
        """The address parameter naming it: ("model", "default"), ("run", <run id>) or ("model", <file>)."""
        return ("run", self.name) if self.kind == "run" else ("model", self.name)

    @property
    def run(self) -> Run | None:
        return Run(self.path.parent) if self.kind == "run" else None


DEFAULT_MODEL = "Default model (shipped)"


def run_label(run_id: str) -> str:
    """The picker's label of a run's model (the Train and Runs pages preselect it on Evaluate)."""
    return ModelChoice("run", run_id, Path()).label


def model_choices() -> dict[str, ModelChoice]:
    """Label -> choice: the shipped default model, every finished run, other .pth files in models/."""
    choices = []
    default = models_dir() / "default.pth"
    if default.exists():
        choices.append(ModelChoice("default", "default", default))
    for run in list_runs(runs_root()):
        if run.model_file.exists() and run.state(events(run)) not in ACTIVE_STATES:
            choices.append(ModelChoice("run", run.id, run.model_file))
    inside = models_dir().resolve()
    for path in sorted(models_dir().glob("*.pth")):
        if path.name != "default.pth" and path.resolve().is_relative_to(inside):  # no symlinks out
            choices.append(ModelChoice("file", path.name, path))
    return {choice.label: choice for choice in choices}


@st.cache_resource(max_entries=16, show_spinner=False)
def _model(key: str, mtime: float, data: bytes | None):
    from core.checkpoints import load_model

    return load_model(data if data is not None else key, name=key)


def loaded_model(path: Path | None = None, upload=None):
    """The model from a file on disk or an uploaded file (cached by path and mtime, or by content)."""
    if upload is not None:
        data = upload.getvalue()
        return _model(upload.name, float(len(data)), data)
    return _model(str(path), path.stat().st_mtime, None)


def _remembered(loaded, ds: Dataset, compute: bool = True):
    from core.evaluations import FOLDER, folder_for, remembered_evaluate

    return remembered_evaluate(loaded.model, ds.test, loaded.normalizer(), num_classes=len(loaded.classes),
                               tta=loaded.tta, save_to=folder_for(ds), shipped=(models_dir() / FOLDER,),
                               compute=compute)


@st.cache_resource(max_entries=16, show_spinner="Evaluating on the test set…")
def _evaluation(key: str, mtime: float, data_path: str, _loaded):
    return _remembered(_loaded, _dataset(data_path))


def evaluation(loaded, key: str, mtime: float):
    """Test-set results of a model: remembered on disk by content (core/evaluations.py), and in memory by
    path and date, so revisiting a checkpoint or restarting the server is instant."""
    remembered = _evaluation(key, mtime, str(data_dir()), loaded)
    if remembered.note:
        st.info(literal(remembered.note), icon=":material/info:")
    return remembered.result


def load_shared() -> None:
    """Put in the shared caches, before anyone asks, what a first visit to Overview, Classify or Evaluate waits
    for: the data, the shipped model, and its evaluation where one is remembered (one that is not takes ~40 s
    and is computed when a page asks for it). The server calls this as it starts (dashboard/warm.py); the keys
    are the ones the pages use, so their first look finds everything loaded."""
    ds, default = dataset(), models_dir() / "default.pth"
    if ds is None or not default.is_file():
        return
    from core.checkpoints import CheckpointError, check_fits

    loaded = loaded_model(default)
    try:
        check_fits(loaded, ds.classes)
    except CheckpointError:
        return  # data of other classes: the pages say so when asked
    if _remembered(loaded, ds, compute=False):
        evaluation(loaded, str(default), default.stat().st_mtime)


# pixels of a laptop's page (wide layout, beside the sidebar) that a grid's row shares: 112 a picture in rows of
# eight, which is three to a row on a phone (390 pixels)
GRID = 900


def image_grid(images: list[Image.Image], captions: list[str], per_row: int = 8) -> None:
    """Pictures with their captions, about `per_row` to a row on a laptop's page and as many as fit on a phone's:
    one element that wraps to the page's width. As a column a picture, a phone (≤ 640 px) stacked them into
    pictures each the screen's width, and the browser laid out an element and a column for every picture. Each
    gets a clear margin, as the columns' gap gave them."""
    if not images:
        return
    spaced = [ImageOps.expand(image.convert("RGBA"), border=4, fill=(0, 0, 0, 0)) for image in images]
    st.image(spaced, caption=captions, width=GRID // per_row)


# ---- shareable links: a page's selection in its address (?run=, ?model=, ?class=; Classify's ?inside=1) ----

def linked(param: str, options: dict, what: str):
    """The option that `?param=<id>` in the page's address picks (options: id -> option), or None without one.
    An id that is not among them gets a message saying so, and the page shows its usual choice."""
    value = st.query_params.get(param)
    if value is None:
        return None
    if value in options:
        return options[value]
    shown = value if len(value) <= 60 else value[:60] + "…"
    st.warning(f"The link asks for {what} “{literal(shown)}”, which is not here (it may have been renamed or "
               "deleted, or the link was cut short); showing the usual choice instead.", icon=":material/link_off:")
    return None


def linked_model(choices: dict[str, ModelChoice]) -> str | None:
    """The model choice the address names: ?run=<run id>, or ?model= default, a run's id or a models/ file's name."""
    runs = {c.name: label for label, c in choices.items() if c.kind == "run"}
    others = {c.link[1]: label for label, c in choices.items() if c.kind != "run"}
    return linked("run", runs, "the run") or linked("model", {**runs, **others}, "the model")


def link_model(choice: ModelChoice) -> None:
    """Put the chosen model in the page's address, so copying it shares this view."""
    param, value = choice.link
    st.query_params.pop("run" if param == "model" else "model", None)
    st.query_params[param] = value


def report_button(place, run: Run) -> None:
    """A download of the run's one-file HTML report (dashboard/report.py), built only when clicked."""
    from core.report import run_report

    ds = dataset()
    place.download_button("Download report (HTML)", data=lambda: run_report(run, ds), file_name=f"{run.id}-report.html",
                          mime="text/html", icon=":material/summarize:",
                          help="Curves, per-class accuracy, confusion matrix, test images and settings in one file "
                               "that opens offline")


@dataclass(frozen=True)
class Classification:
    """What Classify shows of one picture, computed once: the pictures, the prediction, its chart."""
    pictures: Image.Image  # the picture, what the network sees and (when asked for) its Grad-CAM, in one row
    shown_beside: list[str]  # what the row shows beside the picture, in order: its caption after the picture's name
    prediction: Prediction
    figure: go.Figure  # the probabilities, and the "none of the ten" score on its gauge where the model has a threshold


def picture_of(content, framing: str) -> tuple[Image.Image, torch.Tensor]:
    """(the picture to show, at most 512 pixels a side; what the network sees, [3,32,32] uint8) of an upload's bytes
    or a test image; ImageError when the bytes are no image."""
    if isinstance(content, torch.Tensor):  # at side_by_side's height: crisp pixels, not resampled again
        return enlarge(content, 8), content
    picture = open_image(content)
    original = to_rgb(picture)
    original.thumbnail((512, 512))
    return original, to_uint8_tensor(picture, framing)


def classification(loaded, content, framing: str, with_map: bool) -> Classification:
    """One picture (upload bytes or a [3,32,32] test image) classified; ImageError when the bytes are no image."""
    original, tensor = picture_of(content, framing)
    prediction = loaded.predict(tensor.unsqueeze(0))[0]
    heat = saliency(loaded.model, tensor, loaded.normalizer(), target=prediction.top,
                    layer=loaded.cam_layer) if with_map else None
    familiarity = (Familiarity(prediction.familiarity, loaded.ood_threshold, loaded.ood_unsure_below,
                               ood.in_words(len(loaded.classes)))
                   if loaded.ood_threshold is not None and with_map else None)
    views, beside = [], []
    if not isinstance(content, torch.Tensor):  # a test image is what the network sees already: shown once
        views, beside = [tensor], ["what the network sees (32×32)"]
    if heat is not None:
        views, beside = views + [overlay(tensor, heat)], beside + ["where the evidence is (Grad-CAM)"]
    figure = probability_figure(loaded.classes, prediction.probabilities, familiarity,
                                guess=prediction.answer == ood.UNFAMILIAR)
    return Classification(side_by_side(original, views), beside, prediction, figure)


# ~1 MB an entry (the 512-pixel picture as pixels, the maps, the figure): 64 bound it to tens of MB
@st.cache_data(max_entries=64, show_spinner=False)
def _shared_classification(model_key: tuple, content: bytes, framing: str, with_map: bool,
                           _loaded) -> Classification:
    return classification(_loaded, content, framing, with_map)


def classified(loaded, name: str, content, framing: str, key: str, compact: bool = False) -> dict:
    """One picture (upload bytes or a [3,32,32] test image) classified and shown: the picture, what the network
    sees, the Grad-CAM map, the calibrated probabilities and the "none of the ten" verdict (Classify and
    Overview). Returns its row for a results table; a file that is not an image gets a message instead.

    Uploads are remembered by content for every session: a room that uploads the same photo (or one person
    changing the framing back) computes it once."""
    try:
        if isinstance(content, torch.Tensor):
            shown = classification(loaded, content, framing, not compact)
        else:  # the model's identity: its file, and the loaded object (a changed file is loaded anew)
            shown = _shared_classification((str(loaded.path), id(loaded.model)), content, framing, not compact,
                                           loaded)
    except ImageError as exc:
        st.error(f"**{literal(name)}**: {literal(str(exc).replace('the upload', 'this file'))}")
        return {"image": name, "prediction": "", "confidence": None, "top 3": f"error: {exc}"}
    result = shown.prediction
    verdict = ood.verdict(result.familiarity, loaded.ood_threshold, len(loaded.classes), loaded.ood_unsure_below)
    if result.answer == ood.UNFAMILIAR:
        st.warning(f"**{literal(name)}**: {literal(verdict)}. The model's closest guesses are still shown.",
                   icon=":material/help:")
    elif result.answer == ood.UNSURE:
        st.info(f"**{literal(name)}**: {literal(verdict)}. Treat its guess with care.", icon=":material/help:")
    # one picture for the three: on a phone (≤ 640 px) it and the answer stack, so the answer is a short scroll
    # under the photo, not under three pictures each the screen's width
    pictures, answer = st.columns([3, 3] if compact else [4, 3])
    pictures.image(shown.pictures, width="stretch", caption=" · ".join([literal(name), *shown.shown_beside]))
    if present.on():  # the answer itself, readable from the back of the room
        guess = f"{literal(loaded.classes[result.top])} · {100 * result.probabilities[result.top]:.0f} %"
        answer.markdown(f"## none of the {ood.in_words(len(loaded.classes))} (closest guess: {guess})"
                        if result.answer == ood.UNFAMILIAR else f"## {guess}")
    chart(answer, shown.figure, width="stretch", key=key)
    if result.answer in (None, ood.FAMILIAR):
        answer.caption(literal(verdict[0].upper() + verdict[1:]))
    return {"image": name, "prediction": loaded.classes[result.top],
            "confidence": round(100 * result.probabilities[result.top], 2),
            "top 3": ", ".join(f"{c} {100 * p:.1f} %" for c, p in top_k(result.probabilities, loaded.classes)),
            "none of the classes": result.unfamiliar, "verdict": result.answer, "score": round(result.familiarity, 3)}
