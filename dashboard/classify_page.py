import pandas as pd
import streamlit as st
import torch

from core import ood
from core.checkpoints import CheckpointError
from core.images import FRAMING, FRAMINGS, ImageError, enlarge, open_image, to_rgb, to_uint8_tensor
from core.interpret import overlay, saliency, top_k
from dashboard.charts import probability_figure
from dashboard.common import dataset, link_model, linked_model, literal, loaded_model, model_choices

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif"]

st.title("Classify")
choices = model_choices()
if not choices:
    st.error("No model to classify with: the shipped default model is missing and no run has finished yet. "
             "Train one on the Train page.")
    st.stop()
wanted = linked_model(choices)
label = st.selectbox("Model", list(choices), index=list(choices).index(wanted) if wanted else 0)
link_model(label)
try:
    loaded = loaded_model(choices[label])
except CheckpointError as exc:
    st.error(literal(exc))
    st.stop()
card = loaded.card
detail = f" — {100 * card['test_accuracy']:.1f} % on CIFAR-10's test set, trained {card.get('date', '?')}" \
    if isinstance(card.get("test_accuracy"), (int, float)) else ""
st.caption(f"Classifying with **{label}** ({loaded.name}, {len(loaded.classes)} classes){detail}.")

upload_tab, camera_tab, sample_tab = st.tabs(["Upload", "Camera", "Test images"])
items: list[tuple[str, bytes | torch.Tensor]] = []
with upload_tab:
    files = st.file_uploader("Drop images here", type=UPLOAD_TYPES, accept_multiple_files=True)
    items += [(f.name, f.getvalue()) for f in files or []]
with camera_tab:
    shot = st.camera_input("Take a picture")
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

framing = st.radio("What the network sees of a non-square photo", FRAMINGS, index=FRAMINGS.index(FRAMING),
                   horizontal=True, format_func={"crop": "its centre square", "whole": "all of it, padded"}.get,
                   help="CIFAR-10's images show the whole object, centred. The centre square suits photos with "
                        "the object in the middle; the padded whole suits objects that fill a wide frame.")

if not items:
    st.info("Upload photos (JPEG, PNG, WebP, BMP, GIF), take one with the camera, or pick test images.")
    st.stop()

normalize = loaded.normalizer()
rows = []
for name, content in items:
    st.divider()
    try:
        if isinstance(content, torch.Tensor):
            original, tensor = enlarge(content, 6), content
        else:
            picture = open_image(content)
            original, tensor = to_rgb(picture), to_uint8_tensor(picture, framing)
            original.thumbnail((512, 512))
    except ImageError as exc:
        st.error(f"**{literal(name)}**: {literal(str(exc).replace('the upload', 'this file'))}")
        rows.append({"image": name, "prediction": "", "confidence": None, "top 3": f"error: {exc}"})
        continue
    result = loaded.predict(tensor.unsqueeze(0))[0]
    verdict = ood.verdict(result.familiarity, loaded.ood_threshold, len(loaded.classes))
    rows.append({"image": name, "prediction": loaded.classes[result.top],
                 "confidence": round(100 * result.probabilities[result.top], 2),
                 "top 3": ", ".join(f"{c} {100 * p:.1f} %" for c, p in top_k(result.probabilities, loaded.classes)),
                 "none of the classes": result.unfamiliar, "score": round(result.familiarity, 3)})
    if result.unfamiliar:
        st.warning(f"**{literal(name)}**: {literal(verdict)}. The model's closest guesses are still shown.",
                   icon=":material/help:")
    heat = saliency(loaded.model, tensor, normalize, target=result.top, layer=loaded.cam_layer)
    cols = st.columns([2, 1, 1, 3])
    cols[0].image(original, caption=name, width="stretch")
    cols[1].image(enlarge(tensor, 4), caption="what the network sees (32×32)", width="stretch")
    cols[2].image(enlarge(overlay(tensor, heat), 4), caption="where the evidence is (Grad-CAM)", width="stretch")
    cols[3].plotly_chart(probability_figure(loaded.classes, result.probabilities), width="stretch",
                         key=f"p-{len(rows)}")
    if not result.unfamiliar:
        cols[3].caption(literal(verdict[0].upper() + verdict[1:]))

st.divider()
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch")
st.download_button("Download results (CSV)", table.to_csv(index=False), file_name="predictions.csv",
                   mime="text/csv", icon=":material/download:")
