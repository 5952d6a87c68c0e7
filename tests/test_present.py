"""Presenter mode (dashboard/present.py): ?present=1 or the sidebar's button hides the sidebar and the settings,
draws text, charts and Classify's answer large, follows the presenter between pages and stays in the address."""
import json

import plotly.graph_objects as go
from conftest import PENCIL, ROOT, open_app

from dashboard.present import FONT, TITLE, large


def sidebar_texts(at) -> list[str]:
    return [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]


def test_a_presenting_link_hides_the_sidebar_and_folds_the_settings(env):
    at = open_app("dashboard/classify_page.py", {"model": "default", "present": "1"})
    assert not sidebar_texts(at) and not at.sidebar.button  # no device, data or run panel, no way in
    assert [b.label for b in at.button if b.label == "Leave presenter mode"]
    settings = next(e for e in at.expander if e.label == "Settings")
    assert settings.selectbox[0].label == "Model" and settings.selectbox[0].value == "Default model (shipped)"
    assert settings.radio[0].label.startswith("What the network sees")
    assert at.query_params["present"] == "1" and at.query_params["model"] == "default"
    assert any("html { font-size: 22px; }" in h.proto.body for h in at.get("html"))

    photo = (ROOT / "photos" / "chelsea.jpg").read_bytes()
    at.file_uploader[0].set_value([("chelsea.jpg", photo, "image/jpeg"), ("pencil.jpg", PENCIL.read_bytes(),
                                                                           "image/jpeg")]).run()
    assert not at.exception
    headline = [m.value for m in at.markdown if m.value.startswith("## ")]
    assert len(headline) == 2 and headline[0].startswith("## cat · ") and headline[0].endswith(" %")
    # a picture of none of the ten is not announced as one of them from the back of the room
    assert headline[1].startswith("## none of the ten (closest guess: ") and headline[1].endswith(" %)")
    figure = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and "p-0" in c.key).proto.spec)
    assert figure["layout"]["font"]["size"] == FONT

    at.switch_page("dashboard/evaluate_page.py").run()  # it follows the presenter to the next page
    assert not sidebar_texts(at) and at.query_params["present"] == "1"
    assert any(e.label == "Settings" for e in at.expander)


def test_the_button_turns_it_on_and_off_and_the_address_follows(env):
    at = open_app("dashboard/classify_page.py")
    assert "Presenter mode" in [b.label for b in at.sidebar.button] and sidebar_texts(at)
    assert "present" not in at.query_params and not any(e.label == "Settings" for e in at.expander)
    next(b for b in at.sidebar.button if b.label == "Presenter mode").click().run()
    assert at.query_params["present"] == "1" and not sidebar_texts(at)
    next(b for b in at.button if b.label == "Leave presenter mode").click().run()
    assert "present" not in at.query_params and sidebar_texts(at)
    assert not at.exception


def test_present_0_in_a_link_turns_it_off():
    at = open_app("dashboard/classify_page.py", {"present": "1"})
    at.query_params["present"] = "0"
    at.run()
    assert "present" not in at.query_params and sidebar_texts(at)


def test_large_copies_the_figure_at_a_projectors_size():
    figure = go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout={"title": "t", "height": 300})
    enlarged = large(figure)
    assert (enlarged.layout.font.size, enlarged.layout.title.font.size, enlarged.layout.height) == (FONT, TITLE, 390)
    assert figure.layout.font.size is None and figure.layout.height == 300  # the original, maybe cached, untouched
