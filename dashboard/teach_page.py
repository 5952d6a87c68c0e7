import streamlit as st

from core.checkpoints import CheckpointError
from core.images import FRAMING, ImageError, load_for_model
from core.runs import new_run_id
from core.teach import MAX_PHOTOS, MIN_PHOTOS, TeachConfig, TeachError, check_request, reference, teach, write_run
from dashboard.common import UPLOAD_TYPES, dataset, literal, loaded_model, model_choices, run_label, runs_root
from dashboard.pages import icon, page
from dashboard.present import settings


@st.cache_resource(max_entries=4, show_spinner="Reading the stored CIFAR-10 features of this model once…")
def _reference(key: str, mtime: float, _base, _ds):
    return reference(_base, _ds)


def choose_base():
    """The model to teach (the shipped one first), loaded; stops the page with a message when there is none."""
    choices = model_choices()
    if not choices:
        st.error("No model to teach: the shipped default model is missing and no run has finished yet.")
        st.stop()
    label = st.selectbox("Model to teach", list(choices), help="Its body stays as it is; only its last layer learns")
    try:
        return choices[label], loaded_model(choices[label].path)
    except CheckpointError as exc:
        st.error(literal(exc))
        st.stop()


def photos_given() -> list:
    """(name, [3,32,32] uint8) of each upload and camera shot; an unreadable file gets a message and is left out."""
    files = st.file_uploader(f"Photos of the new class ({MIN_PHOTOS}–{MAX_PHOTOS}; a folder's files can be dropped at "
                             "once)", type=UPLOAD_TYPES, accept_multiple_files=True)
    # drawn only while open: a camera_input turns the camera on as soon as it is drawn, collapsed or not (the shots
    # taken are kept below, so closing it loses none)
    camera = st.expander("Or take them with the camera, one at a time", icon=":material/photo_camera:",
                         key="teach-camera-open", on_change="rerun")
    with camera:
        shot = st.camera_input("Take a photo", key="teach-camera") if camera.open else None
    shots = st.session_state.setdefault("teach-shots", [])
    if shot is not None and (not shots or shots[-1] != shot.getvalue()):
        shots.append(shot.getvalue())
    photos = []
    for name, data in [(f.name, f.getvalue()) for f in files or []] + [(f"camera {i + 1}", s)
                                                                       for i, s in enumerate(shots)]:
        try:
            photos.append((name, load_for_model(data, FRAMING)))
        except ImageError as exc:
            st.error(f"**{literal(name)}** is left out: {literal(str(exc).replace('the upload', 'this file'))}")
    return photos


def teach_it(ds, choice, base, name: str, photos: list, mix: bool) -> None:
    """Teach the class and keep the result (and its run) for the session; a bad request gets its message."""
    try:
        config = TeachConfig(check_request(base, name, photos, list(ds.classes)), mix=mix)
        with st.spinner("Teaching…"):
            ref = _reference(str(choice.path), choice.path.stat().st_mtime, base, ds)
            taught = teach(base, photos, ref, config)
            run = write_run(taught, base, config, ds, runs_root() / f"{new_run_id()}-teach")
        st.session_state["taught"] = (taught, config, run)
    except (TeachError, CheckpointError) as exc:
        st.error(literal(exc))


def show_result(taught, config, run) -> None:
    """The new model's answers on the photos (held-out ones marked) and the forgetting meter."""
    f = taught.forgetting
    st.success(f"Taught “{literal(config.class_name)}” in {taught.seconds:.1f} s: saved as run **{run.id}**.")
    before, mixed, alone = st.columns(3)
    before.metric("The ten classes before", f"{100 * f['before']:.1f} %",
                  help=f"Accuracy on the first {f['test_images']:,} CIFAR-10 test images")
    mixed.metric("After, with CIFAR-10 mixed in", f"{100 * f['after_mixed']:.1f} %",
                 delta=f"{100 * (f['after_mixed'] - f['before']):+.1f} points")
    alone.metric("After, from the photos alone", f"{100 * f['after_alone']:.1f} %",
                 delta=f"{100 * (f['after_alone'] - f['before']):+.1f} points")
    st.caption("The forgetting meter: what learning the new class costs the ten it knew, with and without the mix "
               f"(the run keeps the {'mixed' if config.mix else 'photos-alone'} one).")
    st.dataframe([{"photo": a["photo"], "held out": a["held_out"], "answer": a["prediction"],
                   "probability %": round(100 * a["probability"], 1),
                   f"{config.class_name} %": round(100 * a["new_class_probability"], 1)} for a in taught.answers],
                 hide_index=True, width="stretch")
    left, right = st.columns(2)
    if left.button("Classify with it", icon=icon("classify")):
        st.query_params.clear()
        st.switch_page(page("classify"), query_params={"run": run.id})
    if right.button("Evaluate it", icon=icon("evaluate")):
        st.session_state["eval_choice"] = run_label(run.id)
        st.switch_page(page("evaluate"))


st.title("Teach")
st.caption("Give the network a class of your own from a few photos: it learns it in seconds, and the meter shows "
           "what that costs the ten it knew.")
ds = dataset()
if ds is None:
    st.error("Teaching needs the CIFAR-10 data (stored features keep the ten, and the meter scores them); get it on "
             "the Data page first.")
    st.stop()
with settings():
    choice, base = choose_base()
    mix = st.toggle("Mix in stored CIFAR-10 images, so the ten are not forgotten", value=True)
name = st.text_input("Name of the new class", max_chars=40, placeholder="e.g. mug")
photos = photos_given()
st.caption(f"{len(photos)} photo{'' if len(photos) == 1 else 's'} ready" + (f" (at least {MIN_PHOTOS} needed)"
                                                                             if len(photos) < MIN_PHOTOS else ""))
if st.button("Teach", type="primary", icon=icon("teach")):
    teach_it(ds, choice, base, name, photos, mix)
if "taught" in st.session_state:
    show_result(*st.session_state["taught"])
