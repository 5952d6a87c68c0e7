"""The dashboard's entry point: page setup, navigation and the shared sidebar; each page is its own file."""
import os

# Set before torch loads. The dashboard predicts a few images at a time, often while a trainer holds every
# core; OpenMP threads that spin-wait for a descheduled partner then turn a 10 ms prediction into seconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

from dashboard import present
from dashboard.common import sidebar
from dashboard.pages import all_pages

st.set_page_config(page_title="CIFAR-10 Classifier Lab", page_icon=":material/neurology:", layout="wide")
presenting = present.presenting()
page = st.navigation(all_pages(), position="top" if presenting else "sidebar")
if presenting:
    present.style()
else:
    sidebar()
present.toggle()
page.run()
