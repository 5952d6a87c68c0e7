"""Presenter mode: the dashboard for a projector. `?present=1` in any page's address (or the sidebar's toggle)
hides the sidebar and each page's settings, and draws text, charts and Classify's answer large. It stays on while
the presenter moves between pages, and rides along in every address the page puts in the bar, so a link copied
there opens presenting, with the page's own choices (?model=, ?run=, ?class=, ?inside=) as before."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

PARAM, KEY = "present", "presenting"
ON = ("1", "true", "yes", "on")
FONT, TITLE = 20, 26  # px on a chart: legible from the back of a room at 1080p

# Streamlit sizes its text in rem: a larger root font enlarges titles, text, tables and widgets together.
# The sidebar and its opener are hidden (the navigation moves to the top), and the width is the screen's.
STYLE = """<style>
html { font-size: 22px; }
h1 { font-size: 3rem !important; }
section[data-testid="stSidebar"], div[data-testid="stSidebarCollapsedControl"] { display: none !important; }
.block-container { max-width: 100% !important; padding-top: 3.5rem !important; }
</style>"""


def presenting() -> bool:
    """Whether this session presents: the address says so (?present=1, which turns it on for the session), or
    the session turned it on earlier. The address is kept in step, so a copied link presents too."""
    asked = st.query_params.get(PARAM)
    on = asked.lower() in ON if asked is not None else bool(st.session_state.get(KEY, False))
    _set(on)
    return on


def _set(on: bool) -> None:
    st.session_state[KEY] = on
    if on:
        st.query_params[PARAM] = "1"
    else:
        st.query_params.pop(PARAM, None)


def on() -> bool:
    """Whether this session is presenting (as presenting() found it on this run)."""
    return bool(st.session_state.get(KEY, False))


def toggle() -> None:
    """The way in (in the sidebar) and out (a small button at the top of each page while presenting)."""
    if on():
        st.button("Leave presenter mode", icon=":material/close_fullscreen:", type="tertiary", key="present-off",
                  on_click=_set, args=(False,))
    else:
        st.sidebar.button("Presenter mode", icon=":material/co_present:", key="present-on", on_click=_set,
                          args=(True,), help="For a projector: no sidebar or settings, large text, charts and "
                                             "answers. Adds ?present=1 to the address, so the link presents too.")


def style() -> None:
    st.html(STYLE)


def settings():
    """Where a page puts its settings: in place normally; folded away in a closed expander while presenting (the
    link's choices still apply, and the presenter can still open it)."""
    if on():
        return st.expander("Settings", icon=":material/tune:", expanded=False)
    return st.container()


def large(figure: go.Figure) -> go.Figure:
    """A copy of `figure` with its text at a projector's size (the original may be cached and shared)."""
    figure = go.Figure(figure)
    height = figure.layout.height
    figure.update_layout(font_size=FONT, title_font_size=TITLE, legend_font_size=FONT,
                         height=round(height * 1.3) if height else None)
    return figure


def chart(place, figure: go.Figure, **kwargs):
    """`place.plotly_chart(figure, …)`, large while presenting; returns what plotly_chart returns (selections)."""
    if on():
        figure = large(figure)
    return place.plotly_chart(figure, **kwargs)
