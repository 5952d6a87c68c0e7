import streamlit as st

from core.runs import list_runs
from dashboard.common import RUNNING, active_run, dataset, device_label, runs_root
from dashboard.pages import page

st.title("CIFAR-10 Classifier Lab")
st.markdown("Train the PyTorch tutorial's image classifier on CIFAR-10 and watch it learn, live. "
            "Inspect the data, compare runs, and see exactly what each model gets right and wrong.")

ds = dataset()
summaries = [r.summary() for r in list_runs(runs_root())]
accuracies = [s["best_accuracy"] for s in summaries if s["best_accuracy"] is not None]
a, b, c, d = st.columns(4)
a.metric("Data", f"{len(ds.train) + len(ds.test):,} images" if ds else "not found",
         help=ds.description if ds else "See the Data page")
if ds:
    a.caption(ds.source_name)
b.metric("Runs", len(summaries), help=f"{sum(s['state'] in RUNNING for s in summaries)} training now")
c.metric("Best test accuracy", f"{100 * max(accuracies):.1f} %" if accuracies else "—")
d.metric("Device", device_label())

st.subheader("Next step")
run = active_run()
if ds is None:
    st.info("No data yet: get CIFAR-10 (or point at your own class-per-folder images).")
    st.page_link(page("data"), label="Go to Data")
elif run is not None and run.state() in RUNNING:
    st.info(f"Run **{run.id}** is training: watch its curves live.")
    st.page_link(page("train"), label="Watch it train")
elif not summaries:
    st.info("Data is ready. Start with the tutorial preset: the tutorial's exact settings, several times faster.")
    st.page_link(page("train"), label="Train a model")
else:
    st.info("Compare your runs side by side, or train another.")
    st.page_link(page("runs"), label="Compare runs")
    st.page_link(page("train"), label="Train another")
