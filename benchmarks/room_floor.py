"""The floor under benchmarks/room.py: the page a room would meet if the dashboard added nothing to Streamlit, an
uploader and one line of answer, no model. What a room of N costs here is what Streamlit and Chromium cost on these
cores before Classify draws anything of its own; room.py runs it beside Classify and prints the ratio.

    streamlit run benchmarks/room_floor.py
"""
import streamlit as st

st.caption("Classifying with nothing: Streamlit's own upload and rerun")  # the line room.py waits for
files = st.file_uploader("Drop images here", accept_multiple_files=True)
for upload in files or []:
    st.write(f"Prediction: none ({upload.name}, {len(upload.getvalue())} bytes)")
