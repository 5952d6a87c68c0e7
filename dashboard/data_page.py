import streamlit as st
import torch

from core.charts import class_counts_figure
from core.data import DataConfig, DataError, download_cifar10
from core.images import enlarge
from dashboard.common import data_dir, dataset, dataset_error, forget_dataset, image_grid, literal
from dashboard.present import chart


def no_data() -> None:
    """Why there is no data, and the two ways to some: download CIFAR-10, or point the app at a folder tree."""
    st.error(literal(dataset_error()))
    left, right = st.columns(2)
    with left:
        st.subheader("Download CIFAR-10")
        st.write(f"About 170 MB from the dataset's host, through torchvision, into `{data_dir()}`.")
        if st.button("Download CIFAR-10", type="primary"):
            bar = st.progress(0.0, text="Connecting…")
            try:
                download_cifar10(data_dir(), progress=lambda done, total: bar.progress(
                    min(done / total, 1.0) if total else 0.0, text=f"{done / 2**20:.0f} of {total / 2**20:.0f} MB"))
                forget_dataset()
                st.rerun()
            except DataError as exc:
                bar.empty()
                st.error(literal(exc))
    with right:
        st.subheader("Offline?")
        st.markdown(f"Put a class-per-folder tree in `{data_dir()}` (or one folder below it): "
                    "`train/<class>/*.jpg` and `test/<class>/*.jpg`, any image format, any number of classes. "
                    "Or start the app with `CIFAR_DATA=/path/to/your/images` to read it from elsewhere.")
        if st.button("Check again"):
            forget_dataset()
            st.rerun()


def summary(ds, classes: list[str]) -> None:
    """Where the data comes from, how much of it there is, and how it is normalised."""
    st.markdown(f"**Source: {ds.source_name}**" + (" (torchvision's `cifar-10-batches-py`, md5-checked by torchvision)"
                                                      if ds.kind == "torchvision" else "") + f" · `{ds.root}`")
    a, b, c = st.columns(3)
    a.metric("Training images", f"{len(ds.train):,}")
    b.metric("Test images", f"{len(ds.test):,}")
    c.metric("Classes", len(classes))
    chart(st, class_counts_figure(classes, {"train": ds.train.class_counts(len(classes)),
                                            "test": ds.test.class_counts(len(classes))}), width="stretch")
    mean, std = DataConfig().mean, DataConfig().std
    st.markdown(f"**Normalisation** (as the tutorial's `transforms.Normalize({mean}, {std})`): each pixel value "
                f"*v* in 0–255 becomes (*v*/255 − {mean[0]}) / {std[0]}, so inputs range over [−1, 1].")


def training_images(ds, classes: list[str]) -> None:
    """A grid of training images, of one class or all, reshuffled on request (the seed is the session's)."""
    st.subheader("Training images")
    left, mid, right = st.columns([2, 1, 1])
    choice = left.selectbox("Class", ["All classes"] + classes)
    count = mid.select_slider("How many", [8, 16, 32, 64], value=32)
    if right.button("Reshuffle", icon=":material/shuffle:"):
        st.session_state["grid_seed"] = st.session_state.get("grid_seed", 0) + 1
    pool = torch.arange(len(ds.train)) if choice == "All classes" else \
        torch.nonzero(ds.train.labels == classes.index(choice)).flatten()
    generator = torch.Generator().manual_seed(st.session_state.get("grid_seed", 0))
    picked = pool[torch.randperm(len(pool), generator=generator)[:count]].tolist()
    image_grid([enlarge(ds.train.images[i], 4) for i in picked], [classes[ds.train.labels[i]] for i in picked])


st.title("Data")
ds = dataset()
if ds is None:
    no_data()
    st.stop()
summary(ds, list(ds.classes))
training_images(ds, list(ds.classes))
