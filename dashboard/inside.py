"""Seeing inside one picture (Classify; the replay on Tutorial too): the learning replay and what if.

Each section is a fragment: moving its sliders reruns the section alone. The replay's frames are computed once per
picture and model for every session (st.cache_data), so a slider shows a frame already there.
"""
from __future__ import annotations

import streamlit as st
import torch

from core import snapshots, whatif
from core.images import enlarge, mosaic
from core.interpret import overlay, saliency, top_k
from core.replay import Frame, replay
from dashboard.common import literal

PLAY_EVERY = 1.0  # seconds a frame while the replay plays
FILTERS_SHOWN = 16


@st.cache_resource(max_entries=8, show_spinner=False)
def _snapshots(path: str, mtime: float) -> snapshots.Snapshots | str | None:
    try:
        return snapshots.load(path)
    except snapshots.SnapshotError as exc:
        return str(exc)


def model_snapshots(loaded) -> snapshots.Snapshots | str | None:
    """The loaded model's snapshots (cached by file and date), the reason they cannot be used, or None."""
    path = snapshots.file_for(loaded.path)
    return _snapshots(str(path), path.stat().st_mtime) if path.is_file() else None


@st.cache_data(max_entries=32, show_spinner="Replaying the picture through the training…")
def _frames(model_key: tuple, picture: bytes, _loaded, _kept: snapshots.Snapshots) -> list[Frame] | str:
    image = torch.frombuffer(bytearray(picture), dtype=torch.uint8).view(3, 32, 32)
    try:
        return replay(_loaded, _kept, image)
    except ValueError as exc:
        return str(exc)


def _model_key(loaded) -> tuple:
    return str(loaded.path), id(loaded.model)


def learning_replay(loaded, image: torch.Tensor, key: str) -> None:
    """The picture's top 3, its Grad-CAM and the first layer's filters at every snapshot, on a slider with play."""
    st.subheader("Learning replay")
    kept = model_snapshots(loaded)
    if not isinstance(kept, snapshots.Snapshots):
        st.info(literal(kept) if isinstance(kept, str) else
                "This model kept no weight snapshots along its training (it was trained before runs kept them, with "
                "snapshots off, or it is too large for two within 25 MB), so there is nothing to replay. Train a "
                "run to watch one learn.",
                icon=":material/history:")
        return
    frames = _frames(_model_key(loaded), image.contiguous().numpy().tobytes(), loaded, kept)
    if isinstance(frames, str):
        st.error(literal(frames))
        return
    st.caption(f"The same picture through the model's {len(frames)} weight snapshots, from its random initial "
               "weights to the trained model (log-spaced: a network learns most in its first steps). Probabilities "
               "are uncalibrated softmax.")
    _player(frames, loaded.classes, image, key)


def _player(frames: list[Frame], classes: list[str], image: torch.Tensor, key: str) -> None:
    playing_key, slider_key = f"{key}-playing", f"{key}-replay"
    playing = st.session_state.get(playing_key, False)

    @st.fragment(run_every=PLAY_EVERY if playing else None)
    def player():
        if playing:  # advance one frame; stop on the last
            at = st.session_state.get(slider_key, 0)
            st.session_state[slider_key] = min(at + 1, len(frames) - 1)
            if at + 1 >= len(frames) - 1:
                st.session_state[playing_key] = False
        left, right = st.columns([1, 5], vertical_alignment="bottom")
        if left.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                       key=f"{key}-play"):
            if not playing and st.session_state.get(slider_key, 0) >= len(frames) - 1:
                st.session_state[slider_key] = 0
            st.session_state[playing_key] = not playing
            st.rerun()  # the fragment's timer is set when the page runs
        index = right.select_slider("Snapshot", options=range(len(frames)), key=slider_key,
                                    format_func=lambda i: f"step {frames[i].step} (epoch {frames[i].epoch:.2f})")
        show_frame(frames[index], classes, image)

    player()


def show_frame(frame: Frame, classes: list[str], image: torch.Tensor) -> None:
    (name, p), *_ = frame.top_k(classes)
    cols = st.columns([1, 2, 2])
    cols[0].image(enlarge(overlay(image, frame.heat), 4), caption="where it looks (Grad-CAM)", width="stretch")
    with cols[1]:
        st.markdown(f"**Step {frame.step}** (epoch {frame.epoch:.2f}): test accuracy **{100 * frame.accuracy:.1f} %** "
                    f"(first {frame.test_images:,} test images)")
        for label, probability in frame.top_k(classes):
            st.progress(probability, text=f"{label} {100 * probability:.1f} %")
    with cols[2]:
        filters = frame.filters[:FILTERS_SHOWN]
        st.caption(f"The first layer's filters ({len(filters)} of {len(frame.filters)})")
        st.image(mosaic(filters, per_row=8, scale=max(4, 32 // filters.shape[-1])), width="stretch")


def _edit_controls(key: str) -> tuple[whatif.Edit, float, int]:
    left, right = st.columns(2)
    with left:
        size = st.slider("Grey square: size (pixels)", 0, 24, 0, key=f"{key}-size")
        x = st.slider("Grey square: across", 0, 31, 16, key=f"{key}-x", disabled=size == 0)
        y = st.slider("Grey square: down", 0, 31, 16, key=f"{key}-y", disabled=size == 0)
        rotation = st.slider("Rotation (degrees)", -180, 180, 0, step=5, key=f"{key}-rotation")
    with right:
        brightness = st.slider("Brightness", 0.2, 2.0, 1.0, step=0.05, key=f"{key}-brightness")
        contrast = st.slider("Contrast", 0.2, 2.0, 1.0, step=0.05, key=f"{key}-contrast")
        blur = st.slider("Blur (sigma, pixels)", 0.0, 3.0, 0.0, step=0.1, key=f"{key}-blur")
        epsilon = st.slider("Adversarial noise ε (of 255 per pixel value)", 0.0, 16.0, 0.0, step=0.5,
                            key=f"{key}-epsilon", help="Noise chosen by the network's own gradient to push its answer "
                                                       "toward the runner-up class, at most ε per pixel value.")
        method = st.radio("Attack", ["FGSM (one step)", "PGD (10 steps)"], horizontal=True, key=f"{key}-method")
    edit = whatif.Edit(occlude_x=x, occlude_y=y, occlude_size=size, brightness=brightness, contrast=contrast,
                       blur=blur, rotation=rotation)
    return edit, epsilon, 1 if method.startswith("FGSM") else 10


def what_if(loaded, image: torch.Tensor, key: str) -> None:
    """Sliders that change the picture (a grey square, brightness, contrast, blur, rotation, adversarial noise) and
    the model's answer and Grad-CAM on the changed picture."""
    st.subheader("What if")
    st.caption("Change the picture and see the answer change: what the network's answer rests on. The adversarial "
               "slider adds noise a person cannot see, chosen to fool it.")

    @st.fragment
    def section():
        edit, epsilon, steps = _edit_controls(key)
        changed = whatif.edited(image, edit)
        target = None
        if epsilon > 0:
            changed, target = whatif.adversarial(loaded.model, changed, loaded.normalizer(), epsilon, steps,
                                                 tta=loaded.tta)
        before, after = loaded.predict(torch.stack([image, changed]))
        heat = saliency(loaded.model, changed, loaded.normalizer(), target=after.top, layer=loaded.cam_layer)
        views = [image, changed, torch.from_numpy(overlay(changed, heat)).permute(2, 0, 1)]
        captions = ["the picture (32×32)", "changed", "where it looks now (Grad-CAM)"]
        if epsilon > 0:
            views.append(whatif.amplified_difference(image, changed))
            captions.append(f"the noise, amplified (at most {epsilon:g}/255)")
        # one picture for the row: a phone shows it across its width instead of stacking each at that width
        st.image(mosaic(torch.stack(views), per_row=len(views), scale=8, gap=8), caption=" · ".join(captions),
                 width="stretch")
        verdict(loaded.classes, before, after, target)

    section()


def verdict(classes: list[str], before, after, target: int | None) -> None:
    was, now = classes[before.top], classes[after.top]
    shown = ", ".join(f"{c} {100 * p:.1f} %" for c, p in top_k(after.probabilities, classes))
    if after.top != before.top:
        aimed = f" (the attack aimed at {classes[target]})" if target is not None else ""
        st.warning(f"Now **{now}** {100 * after.probabilities[after.top]:.1f} %, no longer {was}{aimed}. "
                   f"Top 3: {shown}.", icon=":material/swap_horiz:")
    else:
        st.success(f"Still **{now}** ({100 * before.probabilities[before.top]:.1f} % → "
                   f"{100 * after.probabilities[after.top]:.1f} %). Top 3: {shown}.", icon=":material/check:")

