"""Placeholder entry point until the dashboard lands (issue: Dashboard I)."""
import streamlit as st

st.set_page_config(page_title="CIFAR-10 Classifier Lab", page_icon="🖼️")
st.title("CIFAR-10 Classifier Lab")
st.info("The dashboard pages are being built. Meanwhile everything works from the command line: "
        "`python -m core train --preset tutorial`, `python -m core evaluate runs/<id>`, "
        "`python -m core predict runs/<id>/model.pth photo.jpg`.")
