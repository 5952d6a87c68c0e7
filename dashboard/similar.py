"""Evaluate's map of what the network thinks is similar, and the images behind a confusion-matrix cell."""
from __future__ import annotations

import streamlit as st
import torch

from core import similarity
from core.charts import embedding_figure
from core.evaluations import SHIPPED, folder_for
from core.images import enlarge
from core.interpret import most_confused
from dashboard.common import data_dir, image_grid, literal
from dashboard.present import chart

MAP_METHODS = {"tsne": "t-SNE (shows the classes best)", "pca": "PCA (the two main directions)"}
SHOWN = 40  # selected images shown at most
PHOTO = "map-photo"  # session_state: (name, [3,32,32] uint8) of a Classify photo to place on the map


@st.cache_resource(max_entries=8, show_spinner="Reading the network's features of the test images…")
def _feature_map(key: str, mtime: float, data_path: str, _loaded, _ds) -> similarity.FeatureMap:
    ds = _ds
    found = similarity.feature_map(_loaded.model, ds.test, _loaded.normalizer(), folders=(SHIPPED,),
                                   save_to=folder_for(ds))
    if found.source == "computed":
        similarity.remember(found, _loaded.model, ds.test, _loaded.normalizer(), folder_for(ds))
    return found


@st.cache_resource(max_entries=16, show_spinner="Drawing the map (once for this model)…")
def _coordinates(key: str, mtime: float, data_path: str, method: str, _loaded, _ds):
    found = _feature_map(key, mtime, data_path, _loaded, _ds)
    if method in found.maps:
        return found.maps[method]
    coordinates = found.coordinates(method)  # drawn now: remembered on disk with the features for the next server
    similarity.remember(found.with_map(method, coordinates), _loaded.model, _ds.test, _loaded.normalizer(),
                        folder_for(_ds))
    return coordinates


@st.cache_resource(max_entries=4,
                   show_spinner="Reading the network's features of 5,000 training images (once for this model)…")
def _neighbour_bank(key: str, mtime: float, data_path: str, _loaded, _ds) -> similarity.NeighbourBank:
    return similarity.neighbour_bank(_loaded.model, _ds.train, _loaded.normalizer(), folders=(SHIPPED,),
                                     save_to=folder_for(_ds))


def similar_images(loaded, key: str, stamp: float, result, ds, classes: list[str]) -> None:
    """The penultimate features of the first test images as a 2-D map, coloured by class; a selection shows its
    images; a photo sent from Classify is a star with its nearest training images."""
    st.subheader("Similar images")
    found = _feature_map(key, stamp, str(data_dir()), loaded, ds)
    if found.note:
        st.info(literal(found.note), icon=":material/info:")
    drawn = [m for m in MAP_METHODS if m in found.maps]
    method = st.radio("Map", list(MAP_METHODS), format_func=MAP_METHODS.get, horizontal=True, key="map-method",
                      index=list(MAP_METHODS).index(drawn[0]) if drawn else 1,
                      help="t-SNE keeps neighbours together and separates the classes better (BENCHMARKS.md); "
                           "it takes some seconds the first time for a model, then it is remembered.")
    coordinates = _coordinates(key, stamp, str(data_dir()), method, loaded, ds)
    n = len(coordinates)
    labels, predictions = ds.test.labels[:n].tolist(), result.predictions[:n].tolist()
    photo = st.session_state.get(PHOTO)
    star, features = None, None
    if photo is not None:
        features = similarity.penultimate(loaded.model, photo[1].unsqueeze(0), loaded.normalizer())[0]
        star = (*similarity.place(coordinates, found.test_features, features), photo[0])
    st.caption(f"Each point is one of the first {n:,} test images, placed by the network's last features: images it "
               "sees as alike are close. Lasso or box points (or click one) to see them; click a class in the legend "
               "to hide it." + ("" if photo is not None else " To place a photo of yours among them, classify it on "
                                "Classify, turn on Look inside and choose Show it on the map of similar images."))
    event = chart(st, embedding_figure(coordinates, labels, predictions, classes, star), width="stretch",
                            key="map", on_select="rerun", selection_mode=("points", "box", "lasso"))
    selected_images(selected(event), ds, classes, predictions)
    if photo is not None:
        photo_neighbours(photo, features, _neighbour_bank(key, stamp, str(data_dir()), loaded, ds), ds, classes)


def selected(event) -> list[int]:
    """The test-image indices of the class points selected on the map (the star is not one)."""
    points = (event or {}).get("selection", {}).get("points", [])
    chosen = []
    for point in points:
        data = point.get("customdata")
        data = data[0] if isinstance(data, list) and data else data
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            chosen.append(int(data))
    return chosen


def selected_images(indices: list[int], ds, classes: list[str], predictions: list[int]) -> None:
    if not indices:
        return
    shown = indices[:SHOWN]
    st.markdown(f"**{len(indices)} selected**" + (f" (the first {SHOWN} shown)" if len(indices) > SHOWN else ""))
    image_grid([enlarge(ds.test.images[i], 3) for i in shown],
               [f"#{i} {classes[ds.test.labels[i]]} → {classes[predictions[i]]}" for i in shown], per_row=10)


def photo_neighbours(photo, features: torch.Tensor, bank: similarity.NeighbourBank, ds, classes: list[str]) -> None:
    name, image = photo
    if bank.note:
        st.info(literal(bank.note), icon=":material/info:")
    neighbours, scores = similarity.nearest(features, bank.features, 8)
    indices = bank.index[neighbours].tolist()
    st.markdown(f"**It thinks {literal(name)} looks like these** (its 8 nearest of "
                f"{len(bank.index):,} training images, by the network's features)")
    image_grid([enlarge(image, 3)] + [enlarge(ds.train.images[i], 3) for i in indices],
               [literal(name)] + [f"{classes[ds.train.labels[i]]} ({s:.2f})" for i, s in zip(indices, scores)],
               per_row=9)
    if st.button("Remove the photo from the map", icon=":material/close:"):
        st.session_state.pop(PHOTO, None)
        st.rerun()


def cell_images(event, result, ds, classes: list[str]) -> None:
    """The test images of one actual/predicted pair: the cell clicked on the confusion matrix, or chosen here;
    at first the pair the model confuses most."""
    points = (event or {}).get("selection", {}).get("points", [])
    cell = next((p.get("customdata") for p in points if isinstance(p.get("customdata"), list)), None)
    if cell is not None and len(cell) == 2:
        st.session_state["cell-actual"], st.session_state["cell-predicted"] = classes[cell[0]], classes[cell[1]]
    worst = most_confused(result.confusion, classes, k=1)
    first = (worst[0]["actual"], worst[0]["predicted"]) if worst else (classes[0], classes[min(1, len(classes) - 1)])
    for name, default in zip(("cell-actual", "cell-predicted"), first):
        if st.session_state.get(name) not in classes:  # first visit, or a model of other classes
            st.session_state[name] = default
    left, right = st.columns(2)
    actual = left.selectbox("Images that are", classes, key="cell-actual")
    predicted = right.selectbox("predicted as", classes, key="cell-predicted")
    a, p = classes.index(actual), classes.index(predicted)
    indices = ((ds.test.labels == a) & (result.predictions == p)).nonzero().flatten().tolist()
    if not indices:
        st.caption(f"No test image that is {actual} was predicted as {predicted}.")
        return
    shown = indices[:SHOWN]
    st.caption(f"{len(indices)} test images that are **{actual}**, predicted as **{predicted}**"
               + (f" (the first {SHOWN})" if len(indices) > SHOWN else ""))
    confidence = result.probabilities[shown, p].tolist()
    image_grid([enlarge(ds.test.images[i], 3) for i in shown],
               [f"#{i} ({100 * c:.0f} %)" for i, c in zip(shown, confidence)], per_row=10)
