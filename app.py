"""The dashboard's entry point: page setup, navigation and the shared sidebar; each page is its own file.

`streamlit run app.py` first imports this file and serves its `app`, whose start (dashboard/warm.py) imports what
the pages need and loads the data and the shipped model before the first visitor; then every session's page run
executes this file as `__main__`, which draws the page."""
import os

# Set before torch loads. The dashboard predicts a few images at a time, often while a trainer holds every
# core; OpenMP threads that spin-wait for a descheduled partner then turn a 10 ms prediction into seconds.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st


def main() -> None:
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


if __name__ == "__main__":
    main()
else:
    from dashboard.warm import lifespan

    app = st.App(__file__, lifespan=lifespan)
