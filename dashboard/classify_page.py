import pandas as pd
import streamlit as st
import torch

from core.charts import per_class_figure
from core.checkpoints import CheckpointError
from core.images import FRAMING, FRAMINGS, ImageError
from dashboard.common import (
    UPLOAD_TYPES,
    classified,
    dataset,
    link_model,
    linked_model,
    literal,
    loaded_model,
    model_choices,
    picture_of,
)
from dashboard.inside import learning_replay, what_if
from dashboard.pages import page
from dashboard.present import chart, settings
from dashboard.similar import PHOTO

INSIDE = "inside"  # ?inside=1: Look inside starts on (a shared link can ask for it)


def chosen_model():
    """The model picked (or named by the link), loaded; stops the page with a message when there is none."""
    choices = model_choices()
    if not choices:
        st.error("No model to classify with: the shipped default model is missing and no run has finished yet. "
                 "Train one on the Train page.")
        st.stop()
    wanted = linked_model(choices)
    label = st.selectbox("Model", list(choices), index=list(choices).index(wanted) if wanted else 0)
    link_model(choices[label])
    try:
        return label, loaded_model(choices[label].path)
    except CheckpointError as exc:
        st.error(literal(exc))
        st.stop()


def about(label: str, loaded, framing: str) -> None:
    """What the model is and, where its card says, how well it knows each class and how it does on real photos in
    the framing picked: a visitor sees what to expect (cats are hard) before uploading, and the page has its charts'
    code loaded before the room's "now"."""
    card = loaded.card
    detail = f" — {100 * card['test_accuracy']:.1f} % on CIFAR-10's test set, trained {card.get('date', '?')}" \
        if isinstance(card.get("test_accuracy"), (int, float)) else ""
    st.caption(f"Classifying with **{label}** ({loaded.name}, {len(loaded.classes)} classes){detail}.")
    on_photos = on_real_photos(card, framing)
    if on_photos:
        st.caption(on_photos)
    per_class = card.get("per_class_accuracy")
    if isinstance(per_class, dict) and all(isinstance(per_class.get(c), (int, float)) for c in loaded.classes):
        with st.expander("How well it knows each class", icon=":material/bar_chart:"):
            chart(st, per_class_figure(loaded.classes, [per_class[c] for c in loaded.classes], sort=True),
                            width="stretch", key="per-class")


def on_real_photos(card: dict, framing: str) -> str | None:
    """What to expect from photos, in a sentence, from the card's measurement on photos/validation/ in `framing`;
    None where the card has no such figures (a run, an older or odd card, a framing it did not measure)."""
    photos = card.get("photos") if isinstance(card.get("photos"), dict) else {}
    rows = photos.get("real_photos") if isinstance(photos.get("real_photos"), list) else []
    row = next((r for r in rows if isinstance(r, dict) and r.get("framing") == framing), None)
    keys = ("photos_of_the_ten", "photos_of_none", "accuracy", "none_flagged", "none_not_sure", "ten_flagged")
    if row is None or not all(isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
                              for k in keys):
        return None
    return (f"On real photos (not CIFAR's 32×32 images) it is right on "
            f"{100 * row['accuracy']:.0f} % of {row['photos_of_the_ten']} photos of its classes; of "
            f"{row['photos_of_none']} photos of other things it calls {100 * row['none_flagged']:.0f} % none of its "
            f"classes and {100 * row['none_not_sure']:.0f} % not sure, and it calls {100 * row['ten_flagged']:.0f} % "
            f"of the photos of its classes none of them (photos/validation).")


def pictures() -> list[tuple[str, bytes | torch.Tensor]]:
    """The pictures to classify: uploads, a camera shot, or random test images."""
    # a camera_input turns the camera on as soon as it is drawn, in a closed tab too: tracking the open tab (a rerun
    # when it changes) keeps it off, and the browser from asking for it, until a visitor opens the Camera tab
    upload_tab, camera_tab, sample_tab = st.tabs(["Upload", "Camera", "Test images"], key="source", on_change="rerun")
    items: list[tuple[str, bytes | torch.Tensor]] = []
    with upload_tab:
        files = st.file_uploader("Drop images here", type=UPLOAD_TYPES, accept_multiple_files=True)
        items += [(f.name, f.getvalue()) for f in files or []]
    with camera_tab:
        shot = st.camera_input("Take a picture") if camera_tab.open else None
        if shot is not None:
            items.append(("camera", shot.getvalue()))
    with sample_tab:
        ds = dataset()
        if ds is None:
            st.info("No test set on this machine; upload pictures instead.")
        else:
            count = st.slider("How many", 1, 12, 4)
            if st.button("Pick random test images", icon=":material/shuffle:"):
                st.session_state["samples"] = torch.randint(len(ds.test), (count,)).tolist()
            items += [(f"test image #{i} ({ds.classes[ds.test.labels[i]]})", ds.test.images[i])
                      for i in st.session_state.get("samples", [])]
    return items


def framing_choice() -> str:
    return st.radio("What the network sees of a non-square photo", FRAMINGS, index=FRAMINGS.index(FRAMING),
                    horizontal=True, format_func={"crop": "its centre square", "whole": "all of it, padded",
                                                  "squeeze": "all of it, squeezed square"}.get,
                    help="CIFAR-10's images show the whole object, centred. The centre square suits photos with "
                         "the object in the middle; the padded whole suits objects that fill a wide frame; squeezed, "
                         "all of the photo fills the square with its proportions changed, as training's zoom crops "
                         "change them.")


def results(loaded, items, framing: str) -> None:
    """Each picture classified, then, for two or more, the whole as a table; the rows download as CSV."""
    rows = []
    for number, (name, content) in enumerate(items):
        st.divider()
        rows.append(classified(loaded, name, content, framing, key=f"p-{number}"))
    st.divider()
    table = pd.DataFrame(rows)
    if len(rows) > 1:  # one picture's row repeats its result above; the grid cost ~0.3 CPU-s a browser in a room of 12
        st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download results (CSV)", table.to_csv(index=False), file_name="predictions.csv",
                       mime="text/csv", icon=":material/download:")


def look_inside(label: str, loaded, items, framing: str) -> None:
    """On request: the learning replay and what if for one of the pictures, and a way to it on Evaluate's map.

    The toggle starts off (on where the link says ?inside=1) and stays as the visitor leaves it. The answer is what
    a visitor comes for: without these sections a room of 30 uploading at once gets it ~4 s sooner
    (benchmarks/room.py), as no browser draws their nine controls and the server replays no photo through the
    snapshots (~10 times the answer's own work)."""
    pictures = {}
    for name, content in items:
        try:
            pictures[name] = picture_of(content, framing)[1]
        except ImageError:
            continue  # its error is shown with the results
    if not pictures:
        return
    st.divider()
    on = st.toggle("Look inside: the learning replay and what if", key="look-inside",
                   value=st.query_params.get(INSIDE) == "1",
                   help="How the network's answer for this picture grew over its training, and how it changes when "
                        "you change the picture. On, it rides along in the address (?inside=1), so a copied link "
                        "opens with it on.")
    if not on:
        st.query_params.pop(INSIDE, None)
        return
    st.query_params[INSIDE] = "1"
    names = list(pictures)
    chosen = st.selectbox("Look inside with", names, key="inside-picture") if len(names) > 1 else names[0]
    if st.button("Show it on the map of similar images", icon=":material/scatter_plot:",
                 help="Evaluate's map of the test images by the network's features, with this picture as a star and "
                      "the training images it thinks it looks like"):
        st.session_state[PHOTO], st.session_state["eval_choice"] = (chosen, pictures[chosen]), label
        st.switch_page(page("evaluate"))
    learning_replay(loaded, pictures[chosen], key="inside")
    what_if(loaded, pictures[chosen], key="inside")


st.title("Classify")
with settings():
    label, loaded = chosen_model()
    framing = framing_choice()
about(label, loaded, framing)
items = pictures()
if not items:
    st.info("Upload photos (JPEG, PNG, WebP, BMP, GIF), take one with the camera, or pick test images.")
    st.stop()
results(loaded, items, framing)
look_inside(label, loaded, items, framing)
