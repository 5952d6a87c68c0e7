import hashlib
from dataclasses import replace

import pandas as pd
import streamlit as st
import torch

from core import anatomy
from core.calibration import reliability, scaled
from core.charts import confusion_figure, per_class_figure, reliability_figure
from core.checkpoints import CheckpointError, check_fits
from core.images import enlarge, mosaic
from core.interpret import most_confused, top_losses
from dashboard.common import (
    dataset,
    evaluation,
    image_grid,
    link_model,
    linked,
    linked_model,
    literal,
    loaded_model,
    model_choices,
    report_button,
)
from dashboard.pages import page
from dashboard.present import chart, settings
from dashboard.similar import cell_images, similar_images

RIGHT, WRONG = "#2ca02c", "#d62728"


def pick_model(ds):
    """The model to evaluate (a run, a saved model or an upload), its cache key, date and shown name, its run."""
    choices = model_choices()
    source = st.radio("Model", ["A run or saved model", "Upload a .pth file"], horizontal=True)
    if source == "Upload a .pth file":
        upload = st.file_uploader("A state_dict saved with torch.save (the tutorial's cifar_net.pth works)",
                                  type=["pth", "pt"])
        if upload is None:
            st.stop()
    elif not choices:
        st.info("No trained model yet: train one on the Train page.")
        st.stop()
    try:
        if source == "Upload a .pth file":
            loaded = loaded_model(upload=upload)
            picked = (loaded, hashlib.sha256(upload.getvalue()).hexdigest(), 0.0, upload.name, None)
        else:
            choice = choices[pick_saved(choices)]
            loaded = loaded_model(choice.path)
            picked = (loaded, str(choice.path), choice.path.stat().st_mtime, choice.label, choice.run)
        check_fits(loaded, ds.classes)
    except CheckpointError as exc:
        st.error(literal(exc))
        st.stop()
    return picked


def pick_saved(choices) -> str:
    """The picker over runs and saved models: the address's choice, else this session's, else the newest run."""
    labels = list(choices)
    newest_run = next((label for label in labels if choices[label].kind == "run"), labels[0])  # just trained
    wanted = linked_model(choices) or st.session_state.get("eval_choice")
    label = st.selectbox("Checkpoint", labels, index=labels.index(wanted if wanted in choices else newest_run))
    st.session_state["eval_choice"] = label
    link_model(choices[label])
    return label


def headline(result, name: str, loaded, run) -> None:
    top, side = st.columns([3, 1])
    top.metric(f"Test accuracy of {name}", f"{100 * result.accuracy:.2f} %",
               help=f"{result.correct:,} of {result.total:,} test images right ({loaded.name})")
    if run is not None and run.metrics():
        report_button(side, run)


def per_class_and_pairs(result, ds, classes: list[str]) -> None:
    left, right = st.columns(2)
    with left:
        ordered = st.toggle("Sort by accuracy")
        shown = [(c, a) for c, a in zip(classes, result.per_class_accuracy) if a == a]  # a taught class: no images
        chart(st, per_class_figure([c for c, _ in shown], [a for _, a in shown], sort=ordered), width="stretch")
    with right:
        st.markdown("**Most confused pairs**")
        pairs = most_confused(result.confusion, classes, k=8)
        st.dataframe(pd.DataFrame({"actual": [p["actual"] for p in pairs],
                                   "predicted as": [p["predicted"] for p in pairs],
                                   "images": [p["count"] for p in pairs],
                                   "% of actual": [round(100 * p["share"], 1) for p in pairs]}),
                     hide_index=True, width="stretch")
    event = chart(st, confusion_figure(result.confusion.tolist(), classes), width="stretch", key="confusion",
                            on_select="rerun", selection_mode="points")
    cell_images(event, result, ds, classes)


def confidence(result, labels, temperature: float):
    """The reliability diagram, as trained and at the run's temperature; returns the result every probability
    shown from here on uses (the calibrated one where a temperature was fitted)."""
    st.subheader("Confidence")
    raw = reliability(result.probabilities, labels)
    curves = {"as trained": (raw.confidence, raw.accuracy, raw.count)}
    if temperature != 1.0:
        result = replace(result, probabilities=scaled(result.probabilities, temperature))
        calibrated = reliability(result.probabilities, labels)
        curves[f"temperature {temperature:.2f}"] = (calibrated.confidence, calibrated.accuracy, calibrated.count)
        st.caption(f"Expected calibration error on the test set: {100 * raw.ece:.1f} % as trained, "
                   f"{100 * calibrated.ece:.1f} % with the temperature its run fitted on held-out training images, "
                   "which every probability shown for this model uses.")
    else:
        st.caption(f"Expected calibration error on the test set: {100 * raw.ece:.1f} % (how far \"x % sure\" is "
                   "from \"right x % of the time\"). Train with a validation split (--val-images) to fit a "
                   "temperature that brings it down.")
    chart(st, reliability_figure(curves), width="stretch")
    return result


def test_images(result, ds, classes: list[str]) -> torch.Tensor:
    """A grid of test images framed right/wrong, filtered by class and outcome; returns the indices shown."""
    st.subheader("Test images")
    labels = ds.test.labels
    a, b, c = st.columns([2, 2, 1])
    wanted = linked("class", {name: name for name in classes}, "the class")
    pick_class = a.selectbox("Class", ["All classes"] + classes, index=1 + classes.index(wanted) if wanted else 0)
    if pick_class == "All classes":
        st.query_params.pop("class", None)
    else:
        st.query_params["class"] = pick_class
    which = b.radio("Show", ["all", "right", "wrong"], horizontal=True)
    if c.button("Reshuffle", icon=":material/shuffle:"):
        st.session_state["eval_seed"] = st.session_state.get("eval_seed", 0) + 1
    mask = torch.ones(len(labels), dtype=torch.bool)
    if pick_class != "All classes":
        mask &= labels == classes.index(pick_class)
    if which != "all":
        mask &= (result.predictions == labels) == (which == "right")
    pool = torch.nonzero(mask).flatten()
    shuffle = torch.Generator().manual_seed(st.session_state.get("eval_seed", 0))
    shown = pool[torch.randperm(len(pool), generator=shuffle)[:24]]
    if not len(shown):
        st.info("No test images match these filters.")
    truths_guesses = [(classes[labels[i]], classes[result.predictions[i]]) for i in shown.tolist()]
    image_grid([enlarge(ds.test.images[i], 4, border=RIGHT if truth == guess else WRONG)
                for i, (truth, guess) in zip(shown.tolist(), truths_guesses)],
               [f"GroundTruth: {truth} · Predicted: {guess}" for truth, guess in truths_guesses])
    return shown


def confident_mistakes(result, ds, classes: list[str]) -> None:
    st.subheader("Most confident mistakes")
    st.caption("The test images with the highest loss: predicted wrongly, and sure of it.")
    worst = top_losses(result, ds.test.labels, k=16)
    image_grid([enlarge(ds.test.images[item["index"]], 4, border=WRONG) for item in worst],
               [f"{classes[item['label']]} → {classes[item['predicted']]} "
                f"({100 * item['confidence']:.0f} %; true class {100 * item['p_label']:.1f} %)" for item in worst])


def layer_table(model) -> None:
    st.subheader("The network")
    st.caption("What the model is made of, layer by layer, read from the model itself: the shape each layer hands "
               "on for one image, its weights, and the multiply-adds it costs.")
    table = anatomy.layers(model)
    st.dataframe(pd.DataFrame({"layer": [layer.name for layer in table], "type": [layer.kind for layer in table],
                               "output": [" × ".join(map(str, layer.output_shape)) for layer in table],
                               "parameters": [layer.parameters for layer in table],
                               "multiply-adds": [layer.mult_adds for layer in table]}),
                 hide_index=True, width="stretch", column_config={
                     "parameters": st.column_config.NumberColumn(format="localized"),
                     "multiply-adds": st.column_config.NumberColumn(format="localized")})
    st.caption(f"{sum(layer.parameters for layer in table):,} parameters; "
               f"{sum(layer.mult_adds for layer in table) / 1e6:,.1f} million multiply-adds per image "
               "(functional steps such as the final ReLUs and flatten have no row: they are not layers of their "
               "own).")


def filters_and_maps(loaded, ds, classes: list[str], first_shown: int) -> None:
    filters = anatomy.first_filters(loaded.model)
    st.markdown(f"**The first layer's {len(filters)} filters**, as colour patterns ({filters.shape[-1]}×"
                f"{filters.shape[-2]} pixels each, enlarged): what it responds to in the image.")
    st.image(mosaic(filters[:32], per_row=16, scale=max(4, 48 // filters.shape[-1])), width="stretch")
    left, right = st.columns(2)
    conv_layers = anatomy.convolutions(loaded.model)
    layer_name = left.selectbox("Feature maps of", conv_layers, index=min(1, len(conv_layers) - 1))
    index = right.number_input("for test image #", 0, len(ds.test) - 1, first_shown)
    maps = anatomy.feature_maps(loaded.model, ds.test.images[index], loaded.normalizer(), layer_name)
    strongest = maps.float().mean((1, 2)).argsort(descending=True)[:32].tolist()
    truth = classes[ds.test.labels[index]]
    st.caption(f"Test image #{index} ({truth}) and the {len(strongest)} most active of the layer's "
               f"{len(maps)} channels, each {maps.shape[-1]}×{maps.shape[-2]} (bright: strongly active).")
    image_grid([enlarge(ds.test.images[index], 4)] + [enlarge(maps[c].expand(3, -1, -1).contiguous(),
                                                              max(1, 128 // maps.shape[-1])) for c in strongest],
               [truth] + [f"channel {c}" for c in strongest], per_row=11)


st.title("Evaluate")
ds = dataset()
if ds is None:
    st.error("There is no test set to evaluate on yet; get the data on the Data page first.")
    st.page_link(page("data"), label="Go to Data")
    st.stop()
with settings():
    loaded, key, stamp, name, run = pick_model(ds)
result = evaluation(loaded, key, stamp)
classes = list(loaded.classes)  # the data's, and a taught model's own after them
headline(result, name, loaded, run)
per_class_and_pairs(result, ds, classes)
result = confidence(result, ds.test.labels, loaded.temperature)
shown = test_images(result, ds, classes)
confident_mistakes(result, ds, classes)
similar_images(loaded, key, stamp, result, ds, classes)
layer_table(loaded.model)
filters_and_maps(loaded, ds, classes, int(shown[0]) if len(shown) else 0)
