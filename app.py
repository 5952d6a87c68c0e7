"""The dashboard's entry point: page setup, navigation and the shared sidebar; each page is its own file."""
import streamlit as st

from dashboard.common import sidebar

st.set_page_config(page_title="CIFAR-10 Classifier Lab", page_icon=":material/neurology:", layout="wide")
page = st.navigation([
    st.Page("dashboard/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("dashboard/data_page.py", title="Data", icon=":material/photo_library:"),
    st.Page("dashboard/train_page.py", title="Train", icon=":material/model_training:"),
    st.Page("dashboard/runs_page.py", title="Runs", icon=":material/table_chart:"),
    st.Page("dashboard/evaluate_page.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("dashboard/classify_page.py", title="Classify", icon=":material/image_search:"),
])
sidebar()
page.run()
