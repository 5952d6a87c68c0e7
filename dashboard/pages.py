"""The dashboard's pages, named once: app.py builds the navigation from them and pages link to them."""
import streamlit as st

_PAGES = {  # name: (script, title, icon); the first is the landing page
    "overview": ("dashboard/overview.py", "Overview", ":material/home:"),
    "tutorial": ("dashboard/tutorial_page.py", "Tutorial", ":material/school:"),
    "data": ("dashboard/data_page.py", "Data", ":material/photo_library:"),
    "train": ("dashboard/train_page.py", "Train", ":material/model_training:"),
    "runs": ("dashboard/runs_page.py", "Runs", ":material/table_chart:"),
    "evaluate": ("dashboard/evaluate_page.py", "Evaluate", ":material/analytics:"),
    "classify": ("dashboard/classify_page.py", "Classify", ":material/image_search:"),
    "teach": ("dashboard/teach_page.py", "Teach", ":material/new_label:"),
}


def page(name: str) -> st.Page:
    """The page called `name`, for st.navigation, st.page_link and st.switch_page (links take its icon)."""
    script, title, icon = _PAGES[name]
    return st.Page(script, title=title, icon=icon, default=name == next(iter(_PAGES)))


def icon(name: str) -> str:
    """The page's icon, for a button that leads to the page or does its work."""
    return _PAGES[name][2]


def all_pages() -> list[st.Page]:
    return [page(name) for name in _PAGES]


def scripts() -> list[str]:
    """Every page's file, relative to the repository."""
    return [script for script, _, _ in _PAGES.values()]
