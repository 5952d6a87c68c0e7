import plotly.graph_objects as go
import pytest

from core.charts import (
    GAUGE_HEIGHT,
    MAX_RAW_POINTS,
    Familiarity,
    Series,
    accuracy_figure,
    accuracy_vs_time_figure,
    class_counts_figure,
    loss_figure,
    per_class_figure,
    probability_figure,
    smooth,
    thin,
)


def test_smoothing_starts_at_the_data_and_follows_it():
    assert smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    s = smooth([1.0, 0.0], 0.5)
    assert s[0] == 1.0 and 0 < s[1] < 1
    assert smooth([5.0, 1.0], 0.0) == [5.0, 1.0]


def test_thin_keeps_first_and_last_and_bounds_the_count():
    x = list(range(10_001))
    tx, ty = thin(x, x)
    assert len(tx) <= MAX_RAW_POINTS + 1 and tx[0] == 0 and tx[-1] == 10_000 and tx == ty
    assert thin([1, 2], [3, 4]) == ([1, 2], [3, 4])


def test_loss_figure_raw_and_smoothed_per_run():
    fig = loss_figure([Series("a", [4, 8, 12], [2.3, 2.0, 1.8]), Series("b", [4, 8], [2.2, 1.9])])
    assert isinstance(fig, go.Figure) and len(fig.data) == 4
    raw, line = fig.data[0], fig.data[1]
    assert raw.mode == "markers" and list(raw.y) == [2.3, 2.0, 1.8] and line.mode == "lines"
    assert line.y[0] == pytest.approx(2.3) and line.y[-1] > 1.8  # smoothed lags behind
    assert fig.layout.xaxis.title.text == "images seen" and fig.layout.uirevision == "keep"


def test_accuracy_figure_in_percent_with_chance_line():
    fig = accuracy_figure([Series("run", [1, 2], [0.48, 0.53])], chance=0.1)
    assert list(fig.data[0].y) == pytest.approx([48.0, 53.0]) and list(fig.data[0].x) == [1, 2]
    assert fig.layout.shapes[0].y0 == pytest.approx(10.0)


def test_per_class_figure_labels_its_chance_line_beside_the_plot_not_on_a_bar():
    fig = per_class_figure(["cat", "dog", "ship", "frog"], [0.9, 0.8, 0.95, 0.7], sort=True)
    assert list(fig.data[0].x) == ["frog", "dog", "cat", "ship"] and fig.layout.shapes[0].y0 == pytest.approx(25.0)
    label = fig.layout.annotations[0]
    assert label.text == "chance" and label.x == 1 and label.xanchor == "left"  # right of the plot area
    assert fig.layout.margin.r >= 70  # with room for it, at a projector's font size too


def test_class_counts_figure_groups_splits():
    fig = class_counts_figure(["cat", "dog"], {"train": [5, 6], "test": [1, 2]})
    assert [t.name for t in fig.data] == ["train", "test"] and list(fig.data[0].y) == [5, 6]
    assert fig.layout.barmode == "group"


def test_accuracy_vs_time_figure_labels_points_on_a_log_axis():
    fig = accuracy_vs_time_figure(["tutorial", "fast"], [45.0, 6.0], [0.53, 0.64], targets={"53 %": 0.53})
    assert list(fig.data[0].text) == ["tutorial", "fast"] and list(fig.data[0].y) == pytest.approx([53.0, 64.0])
    assert fig.layout.xaxis.type == "log" and fig.layout.shapes[0].y0 == pytest.approx(53.0)


def test_reliability_figure_draws_the_diagonal_and_one_line_per_curve():
    from core.charts import reliability_figure

    fig = reliability_figure({"as trained": ([0.55, 0.95], [0.5, 0.7], [10, 90]),
                              "temperature 1.50": ([0.5, 0.8], [0.5, 0.7], [30, 70])})
    assert [t.name for t in fig.data] == ["perfectly calibrated", "as trained", "temperature 1.50"]
    assert list(fig.data[1].x) == pytest.approx([55, 95]) and list(fig.data[1].y) == pytest.approx([50, 70])
    assert fig.data[1].marker.size[1] > fig.data[1].marker.size[0]  # the fuller bin, the larger its marker


def test_the_familiarity_gauge_shows_the_score_in_its_band_under_the_bars():
    classes, probabilities = ["cat", "dog"], [0.8, 0.2]
    fig = probability_figure(classes, probabilities, Familiarity(3.0, 1.0, 2.0))
    bars, gauge = fig.data  # one figure: one chart for a browser to draw
    assert list(bars.y) == ["dog", "cat"] and fig.layout.title.text == "Prediction: cat"
    assert gauge.value == 3.0 and gauge.gauge.shape == "bullet"
    ranges = [tuple(step.range) for step in gauge.gauge.steps]
    assert ranges[1] == (1.0, 2.0) and ranges[0][1] == 1.0 and ranges[2][0] == 2.0  # none | not sure | one of them
    assert ranges[0][0] <= 1.0 and ranges[2][1] >= 3.0  # the score is always on the axis
    assert gauge.domain.y[1] < fig.layout.yaxis.domain[0]  # under the bars, not over them
    assert fig.layout.height == probability_figure(classes, probabilities).layout.height + GAUGE_HEIGHT
    two = probability_figure(classes, probabilities, Familiarity(-5.0, 1.0, None)).data[1]  # two answers only
    assert len(two.gauge.steps) == 2 and two.gauge.axis.range[0] <= -5.0
    assert "one of the ten?" in fig.layout.annotations[0].text
    assert len(probability_figure(classes, probabilities).data) == 1  # no threshold: no gauge
    # a picture called none of the classes: its top class is a guess, not the prediction (with a gauge or without)
    assert probability_figure(classes, probabilities, Familiarity(0.5, 1.0, 2.0), guess=True).layout.title.text == \
        probability_figure(classes, probabilities, guess=True).layout.title.text == "Closest guess: cat"
