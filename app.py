"""The dashboard's entry point: page setup, navigation and the shared sidebar; each page is its own file."""
import streamlit as st

from dashboard.common import sidebar
from dashboard.pages import all_pages

st.set_page_config(page_title="CIFAR-10 Classifier Lab", page_icon=":material/neurology:", layout="wide")
page = st.navigation(all_pages())
sidebar()
page.run()
