import streamlit as st

from core.charts import Series, accuracy_figure
from core.checkpoints import CheckpointError
from core.events import ACTIVE_STATES, curves
from core.images import FRAMING
from core.run_table import row
from core.runs import list_runs
from dashboard.common import (
    DEFAULT_MODEL,
    active_run,
    classified,
    dataset,
    device_label,
    events,
    literal,
    loaded_model,
    model_choices,
    run_label,
    runs_root,
)
from dashboard.live import shown_small
from dashboard.pages import page
from dashboard.present import chart


def figures(ds, summaries: list[dict]) -> None:
    """The lab at a glance: its data, its runs, the best accuracy so far and the device."""
    accuracies = [s["best_accuracy"] for s in summaries if s["best_accuracy"] is not None]
    a, b, c, d = st.columns(4)
    a.metric("Data", f"{len(ds.train) + len(ds.test):,} images" if ds else "not found",
             help=ds.description if ds else "See the Data page")
    if ds:
        a.caption(ds.source_name)
    b.metric("Runs", len(summaries), help=f"{sum(s['state'] in ACTIVE_STATES for s in summaries)} training now")
    c.metric("Best run's test accuracy", f"{100 * max(accuracies):.1f} %" if accuracies else "—")
    d.metric("Device", device_label())


def best_model(summaries: list[dict]):
    """(label, loaded model, its run's summary or None) of the best model here: the shipped one unless a finished
    run beats its card's test accuracy; (None, None, None) when there is none or it cannot be loaded (said)."""
    choices = model_choices()
    best_run = max((s for s in summaries if s["best_accuracy"] is not None and run_label(s["id"]) in choices),
                   key=lambda s: s["best_accuracy"], default=None)
    label = DEFAULT_MODEL if DEFAULT_MODEL in choices else None
    try:
        loaded = loaded_model(choices[label].path) if label else None
        shipped = loaded.card.get("test_accuracy") if loaded else None
        if best_run and (not isinstance(shipped, (int, float)) or best_run["best_accuracy"] > shipped):
            label = run_label(best_run["id"])
            loaded = loaded_model(choices[label].path)
    except CheckpointError as exc:
        st.error(literal(exc))
        return None, None, None
    if loaded is None:
        return None, None, None
    return label, loaded, None if label == DEFAULT_MODEL else best_run


def try_a_photo(summaries: list[dict]) -> None:
    """A photo dropped here, classified by the best model, with what to expect of that model."""
    label, loaded, best_run = best_model(summaries)
    st.subheader("Try it on a photo")
    if loaded is None:
        st.info("No model yet: the shipped default model is missing and no run has finished. Train one first.")
        st.page_link(page("train"), label="Train a model")
        return
    card = loaded.card
    accuracy = card.get("test_accuracy") if best_run is None else best_run["best_accuracy"]
    facts = [f"{100 * accuracy:.1f} % on the 10,000 test images"] if isinstance(accuracy, (int, float)) else []
    if isinstance(card.get("test_ece_calibrated"), (int, float)):
        facts.append(f"calibrated to within {100 * card['test_ece_calibrated']:.1f} % (expected calibration error)")
    if loaded.ood_threshold is not None:
        facts.append("says when a photo is none of its ten classes")
    st.caption(f"The best model here: **{literal(label)}** ({loaded.name})" +
               (": " + "; ".join(facts) if facts else "") + ".")
    photo = st.file_uploader("Drop a photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif"],
                             key="overview-photo")
    if photo is not None:
        classified(loaded, photo.name, photo.getvalue(), FRAMING, key="overview-p", compact=True)
    st.page_link(page("classify"), label="More photos, the camera, Grad-CAM: Classify")


def training_now_and_recent(runs) -> None:
    """The run training now, redrawn every two seconds, and the last five finished runs' accuracy curves."""
    run = active_run()
    if run is not None and run.state() in ACTIVE_STATES:
        st.subheader("Training now")
        st.fragment(run_every=2.0)(shown_small)(run)
        st.page_link(page("train"), label="Watch it on the Train page")
    recent = [r for r in runs if r.metrics()][:5]
    if recent:
        st.subheader("Recent runs")
        series = []
        for r in recent:
            cr = curves(events(r))
            series.append(Series(r.id, cr["epoch"], cr["test_accuracy"], cr["val_accuracy"]))
        figure = accuracy_figure(series)
        figure.update_layout(height=300, title=None)
        chart(st, figure, width="stretch", key="overview-recent")
        st.page_link(page("runs"), label="Compare runs")


def next_step(ds, summaries: list[dict]) -> None:
    st.subheader("Next step")
    if ds is None:
        st.info("No data yet: get CIFAR-10 (or point at your own class-per-folder images).")
        st.page_link(page("data"), label="Go to Data")
    elif not summaries:
        st.info("Data is ready. Start with the tutorial preset: the tutorial's exact settings, several times faster.")
        st.page_link(page("tutorial"), label="Follow the tutorial step by step")
        st.page_link(page("train"), label="Train a model")
    else:
        st.info("Compare your runs side by side, or train another.")
        st.page_link(page("train"), label="Train another")


st.title("CIFAR-10 Classifier Lab")
st.markdown("PyTorch's *Training a Classifier* tutorial as a working lab: train small image classifiers on "
            "CIFAR-10's 60,000 tiny photos of ten kinds of things and watch them learn, live. Drop a photo below to "
            "see what the best model here makes of it, or follow the tutorial step by step.")
ds = dataset()
runs = list_runs(runs_root())
summaries = [row(r) for r in runs]
figures(ds, summaries)
left, right = st.columns([3, 2], gap="large")
with left:
    try_a_photo(summaries)
with right:
    training_now_and_recent(runs)
    next_step(ds, summaries)
