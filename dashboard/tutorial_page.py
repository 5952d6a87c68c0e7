"""The tutorial's five steps on one page, each live and each linking to its full page."""
import inspect

import pandas as pd
import streamlit as st

from core import anatomy
from core.charts import per_class_figure
from core.config import PRESET_DESCRIPTIONS, PRESETS
from core.data import TUTORIAL_NAMES, DataConfig
from core.devices import preset_here
from core.evaluate import tutorial_lines
from core.events import ACTIVE_STATES
from core.images import enlarge
from core.launcher import start_training
from core.models import Net
from core.runs import resolve_run
from core.transforms import normalizer
from dashboard.common import data_dir, dataset, evaluation, events, image_grid, loaded_model, runs_root
from dashboard.inside import learning_replay
from dashboard.live import shown_small
from dashboard.pages import page
from dashboard.present import chart


def load_data(ds, name: list[str]) -> None:
    st.header("1. Load and normalise the data")
    st.markdown(f"{len(ds.train):,} training and {len(ds.test):,} test images of {len(ds.classes)} classes, each "
                "32×32 pixels in colour. The tutorial turns each pixel's 0–255 into 0–1 (`ToTensor`), then shifts and "
                "scales it to −1…1 (`Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))`), so the network sees numbers "
                "centred on 0.")
    shown = list(range(8))
    image_grid([enlarge(ds.train.images[i], 4) for i in shown], [name[ds.train.labels[i]] for i in shown])
    first = ds.train.images[0]
    after = normalizer(DataConfig(), "cpu")(first.unsqueeze(0))[0]
    st.dataframe(pd.DataFrame({"channel": ["red", "green", "blue"],
                               "stored (0–255)": [f"{int(first[c].min())} … {int(first[c].max())}" for c in range(3)],
                               "normalised": [f"{after[c].min():+.2f} … {after[c].max():+.2f}" for c in range(3)],
                               "mean after": [f"{after[c].mean():+.2f}" for c in range(3)]}),
                 hide_index=True)
    st.caption(f"The first training image ({name[ds.train.labels[0]]}): its pixel values per colour channel before "
               "and after normalisation.")
    st.page_link(page("data"), label="All the data: counts per class, more images, the source")


def define_network(num_classes: int) -> None:
    st.header("2. Define a convolutional neural network")
    code, table = st.columns([3, 2])
    # the whole class, as the tutorial shows it; wrapped, since half a page hid its long lines behind a scrollbar
    code.code(inspect.getsource(Net), language="python", wrap_lines=True)
    layers = anatomy.layers(Net(num_classes=num_classes))
    table.dataframe(pd.DataFrame({"layer": [layer.name for layer in layers],
                                  "output": [" × ".join(map(str, layer.output_shape)) for layer in layers],
                                  "parameters": [layer.parameters for layer in layers]}), hide_index=True)
    table.caption(f"{sum(layer.parameters for layer in layers):,} weights in all: two convolutions find patterns, "
                  "pooling halves the image, three linear layers turn the patterns into one score per class.")
    st.page_link(page("evaluate"), label="Any trained model's layers, filters and feature maps: Evaluate")


def loss_and_optimiser() -> None:
    st.header("3. Define a loss function and optimiser")
    tutorial = PRESETS["tutorial"]
    st.code("criterion = nn.CrossEntropyLoss()\n"
            f"optimizer = optim.SGD(net.parameters(), lr={tutorial.lr}, momentum={tutorial.momentum})",
            language="python")
    st.markdown("Cross-entropy is small when the network gives the right class a high score. Stochastic gradient "
                f"descent nudges every weight against its gradient, {tutorial.batch_size} images at a time; momentum "
                "keeps it moving in the direction it has been going.")
    st.page_link(page("train"), label="Every setting of the loss and optimiser, and faster recipes: Train")


def tutorial_run():
    """This session's tutorial run, if it still exists."""
    run_id = st.session_state.get("tutorial_run")
    if not run_id:
        return None
    try:
        run = resolve_run(runs_root(), run_id)
    except ValueError:
        return None
    return run if run.path.is_dir() else None


def train_network(ds):
    """Step 4: the two buttons, and the run they started with its loss curve (and, once it is done, its learning
    replay); returns that run."""
    st.header("4. Train the network")
    run = tutorial_run()
    left, right = st.columns(2)
    for column, preset in ((left, "tutorial"), (right, "fast")):
        label = "Train it: the tutorial's settings" if preset == "tutorial" else "Train it fast (a wider net, seconds)"
        if column.button(label, key=f"tutorial-{preset}", icon=":material/play_arrow:",
                         disabled=run is not None and run.state(events(run)) in ACTIVE_STATES,
                         help=PRESET_DESCRIPTIONS[preset]):
            run = start_training(preset_here(preset), runs_root(), data_dir=str(data_dir()), preset=preset)
            st.session_state["tutorial_run"] = st.session_state["active_run"] = run.id
    if run is None:
        st.info("Start a run: it is an ordinary run, listed on the Runs page, and its loss curve appears here.")
        return None
    state = run.state(events(run))
    st.fragment(run_every=1.0 if state in ACTIVE_STATES else None)(shown_small)(run)
    if state in ACTIVE_STATES:
        st.page_link(page("train"), label="The full live view: Train")
    elif state != "done":
        st.warning(f"The run ended as {state}; see it on the Train page.")
    else:
        how_it_learned(run, ds)
    return run


def how_it_learned(run, ds) -> None:
    """The finished run's learning replay on the first test image: what its training did, snapshot by snapshot."""
    learning_replay(loaded_model(run.model_file), ds.test.images[0], key="tutorial")


def test_network(run, ds, name: list[str]) -> None:
    st.header("5. Test the network on the test data")
    if run is None or run.state(events(run)) != "done":
        st.info("When the run above finishes, its predictions for the first test images and its accuracy appear "
                "here.")
        return
    classes = list(ds.classes)
    loaded = loaded_model(run.model_file)
    four = ds.test.images[:4]
    predicted = [p.top for p in loaded.predict(four)]
    image_grid([enlarge(image, 6) for image in four], [f"GroundTruth: {name[ds.test.labels[i]]} · Predicted: "
                                                       f"{name[predicted[i]]}" for i in range(4)], per_row=4)
    result = evaluation(loaded, str(run.model_file), run.model_file.stat().st_mtime)
    st.code("\n".join(tutorial_lines(result, classes)), language=None)
    chart(st, per_class_figure(classes, result.per_class_accuracy), width="stretch")
    st.page_link(page("evaluate"), label="Where it goes wrong: confusion matrix, mistakes, calibration: Evaluate",
                 query_params={"run": run.id})


st.title("The tutorial, step by step")
st.markdown("PyTorch's *Training a Classifier* in five steps: load the images, define a network, choose a loss and "
            "an optimiser, train, and test. Each step below runs here, on this machine; each links to the page that "
            "goes further.")
ds = dataset()
if ds is None:
    st.error("The tutorial needs CIFAR-10 (or your own class-per-folder images) first.")
    st.page_link(page("data"), label="Get the data")
    st.stop()
name = [TUTORIAL_NAMES.get(c, c) for c in ds.classes]  # the tutorial's short names (plane, car)
load_data(ds, name)
define_network(len(ds.classes))
loss_and_optimiser()
test_network(train_network(ds), ds, name)
