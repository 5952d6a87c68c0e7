"""Chart builders: data in, plotly Figure out. No Streamlit here, so each is unit-tested."""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

PALETTE = ["#EE4C2C", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22"]
MAX_RAW_POINTS = 2000  # more than a chart can show; keeps each refresh cheap on long runs


@dataclass(frozen=True)
class Series:
    label: str
    x: list
    y: list
    validation: list | None = None  # accuracy charts: the same epochs on the held-out training images

def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so it starts at the data."""
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last = last * weight + (1 - weight) * v
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


def thin(x: list, y: list, limit: int = MAX_RAW_POINTS) -> tuple[list, list]:
    """Every k-th point (always keeping the last) so at most `limit` are drawn."""
    if len(x) <= limit:
        return x, y
    k = -(-len(x) // limit)
    idx = list(range(0, len(x), k))
    if idx[-1] != len(x) - 1:
        idx.append(len(x) - 1)
    return [x[i] for i in idx], [y[i] for i in idx]


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white",
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2), height=380,
                      uirevision="keep")  # keeps the user's zoom across live refreshes
    return fig


def loss_figure(series: list[Series], smoothing: float = 0.6, x_title: str = "images seen") -> go.Figure:
    """Raw loss points (faint) and a smoothed line per run."""
    fig = go.Figure()
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        x, y = thin(s.x, s.y)
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=dict(size=4, color=color, opacity=0.3),
                                 name=f"{s.label} (raw)", legendgroup=s.label, showlegend=len(series) == 1))
        sx, sy = thin(s.x, smooth(s.y, smoothing))
        fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", line=dict(width=2.5, color=color),
                                 name=s.label if len(series) > 1 else f"{s.label} (smoothed)", legendgroup=s.label))
    return _layout(fig, "Training loss", x_title, "cross-entropy loss")


def accuracy_figure(series: list[Series], chance: float | None = None) -> go.Figure:
    """Test accuracy (%) after each epoch, one line per run; a run's validation accuracy, when it
    held images out, is the dashed line of the same colour."""
    fig = go.Figure()
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=s.x, y=[100 * v for v in s.y], mode="lines+markers", name=s.label,
                                 line=dict(width=2.5, color=colour), marker=dict(size=8)))
        if s.validation and any(v is not None for v in s.validation):
            fig.add_trace(go.Scatter(x=s.x, y=[None if v is None else 100 * v for v in s.validation],
                                     mode="lines+markers", name=f"{s.label} (validation)",
                                     line=dict(width=2, color=colour, dash="dash"), marker=dict(size=6)))
    if chance:
        fig.add_hline(y=100 * chance, line_dash="dot", line_color="gray", annotation_text="chance")
    fig = _layout(fig, "Test accuracy", "epoch", "accuracy (%)")
    fig.update_xaxes(dtick=1)
    if not any(s.y for s in series):
        fig.add_annotation(text="measured on the test set after each epoch", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5, font=dict(color="gray"))
        fig.update_xaxes(range=[0.5, 2.5])
        fig.update_yaxes(range=[0, 100])
    return fig


def class_counts_figure(classes: list[str], counts: dict[str, list[int]]) -> go.Figure:
    """Images per class, one bar group per split."""
    fig = go.Figure([go.Bar(name=split, x=list(classes), y=values, text=values, textposition="outside",
                            marker_color=PALETTE[i % len(PALETTE)])
                     for i, (split, values) in enumerate(counts.items())])
    fig.update_layout(barmode="group")
    return _layout(fig, "Images per class", "class", "images")


def reliability_figure(curves: dict[str, tuple[list[float], list[float], list[int]]]) -> go.Figure:
    """Reliability diagram: per confidence bin, how often the model was right against how sure it was
    (% both; marker area ~ images in the bin), one line per curve name; the diagonal is perfect calibration."""
    fig = go.Figure(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", name="perfectly calibrated",
                               line=dict(color="gray", dash="dot")))
    for i, (name, (confidence, accuracy, count)) in enumerate(curves.items()):
        largest = max(count, default=1)
        fig.add_trace(go.Scatter(x=[100 * c for c in confidence], y=[100 * a for a in accuracy], name=name,
                                 mode="lines+markers", line=dict(color=PALETTE[i % len(PALETTE)], width=2.5),
                                 marker=dict(size=[6 + 14 * (n / largest) ** 0.5 for n in count]),
                                 customdata=count, hovertemplate="sure %{x:.1f} %, right %{y:.1f} % "
                                                                 "(%{customdata} images)<extra></extra>"))
    fig = _layout(fig, "Confidence against accuracy", "confidence (%)", "accuracy (%)")
    fig.update_xaxes(range=[0, 101])
    fig.update_yaxes(range=[0, 101])
    return fig


def per_class_figure(classes: list[str], accuracy: list[float], sort: bool = False) -> go.Figure:
    """Per-class test accuracy (%) as bars, optionally sorted, with the chance line at 1/classes."""
    pairs = sorted(zip(classes, accuracy), key=lambda p: p[1]) if sort else list(zip(classes, accuracy))
    fig = go.Figure(go.Bar(x=[c for c, _ in pairs], y=[100 * a for _, a in pairs], marker_color=PALETTE[0],
                           text=[f"{100 * a:.1f}" for _, a in pairs], textposition="outside"))
    # labelled outside the plot, on the right: inside it the bars span the whole width and the label sat on one
    fig.add_hline(y=100 / len(classes), line_dash="dot", line_color="gray", annotation_text="chance",
                  annotation_position="right")
    fig = _layout(fig, "Accuracy per class", "class", "accuracy (%)")
    fig.update_layout(margin_r=75)  # room for the label at a projector's font size too (dashboard/present.py)
    fig.update_yaxes(range=[0, 105])
    return fig


def confusion_figure(confusion: list[list[int]], classes: list[str]) -> go.Figure:
    """Heatmap coloured by row-normalised share; each cell shows its count and its % of the row."""
    totals = [max(sum(row), 1) for row in confusion]
    shares = [[100 * v / t for v in row] for row, t in zip(confusion, totals)]
    text = [[f"{v}<br>{s:.0f}%" for v, s in zip(row, srow)] for row, srow in zip(confusion, shares)]
    fig = go.Figure(go.Heatmap(z=shares, x=classes, y=classes, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=100, colorbar=dict(title="% of row"),
                               hoverinfo="skip"))
    # a heatmap's cells cannot be selected (plotly.js gives no selection data for them; streamlit/streamlit#8760):
    # an invisible square marker on each cell takes the click and the hover instead
    cells = [(i, j) for i in range(len(classes)) for j in range(len(classes))]
    fig.add_trace(go.Scatter(x=[classes[j] for _, j in cells], y=[classes[i] for i, _ in cells], mode="markers",
                             marker=dict(symbol="square", size=40, opacity=0.01, color="#000"),
                             customdata=[[i, j] for i, j in cells], text=[text[i][j] for i, j in cells],
                             hovertemplate="actual %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
                             showlegend=False, name="cells"))
    fig = _layout(fig, "Confusion matrix (rows: actual, columns: predicted; click a cell for its images)",
                  "predicted", "actual")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=560)
    return fig


@dataclass(frozen=True)
class Familiarity:
    """A picture's "none of the ten" score and the band it is read in: none of the classes below `flag_below`,
    not sure up to `unsure_below` (None for a two-answer model), one of them above."""
    score: float
    flag_below: float
    unsure_below: float | None
    number: str = "ten"  # how many classes, in words


GAUGE_HEIGHT = 136  # pixels the gauge, its title and the bars' axis below them take


def probability_figure(classes: list[str], probabilities: list[float], familiarity: Familiarity | None = None,
                       guess: bool = False) -> go.Figure:
    """Horizontal bars of class probabilities (%), most likely on top and highlighted; with `familiarity`, its score
    on a small gauge under the bars, in the same figure: one chart for a visitor's browser to draw, not two
    (a second chart cost each browser in a room ~0.15-0.2 CPU-s, BENCHMARKS.md). With `guess` (the picture was
    called none of the classes) the top class is titled the closest guess, not the prediction."""
    order = sorted(range(len(classes)), key=lambda i: probabilities[i])
    top = order[-1]
    fig = go.Figure(go.Bar(x=[100 * probabilities[i] for i in order], y=[classes[i] for i in order],
                           orientation="h", text=[f"{100 * probabilities[i]:.1f} %" for i in order],
                           textposition="outside", cliponaxis=False,
                           marker_color=[PALETTE[0] if i == top else "#c7c7c7" for i in order]))
    fig = _layout(fig, f"{'Closest guess' if guess else 'Prediction'}: {classes[top]}", "probability (%)", "")
    # the axis leaves room for the top bar's "98.4 %"; where the chart is narrow (the Overview's, a phone's) the
    # label runs on into the right margin instead of being cut
    fig.update_xaxes(range=[0, 115])
    fig.update_layout(margin_r=40)
    height = 60 + 28 * len(classes)
    if familiarity is not None:  # under the bars' axis: the gauge's title, the gauge (30 pixels), its axis
        height += GAUGE_HEIGHT
        plot = height - fig.layout.margin.t - fig.layout.margin.b
        fig.add_trace(_gauge(familiarity, {"x": [0.0, 1.0], "y": [18 / plot, 48 / plot]}))
        fig.update_yaxes(domain=[GAUGE_HEIGHT / plot, 1.0])
        fig.add_annotation(text=f"Looks like one of the {familiarity.number}? (score)", x=0, y=54 / plot,
                           xref="paper", yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                           font={"size": 13})
    fig.update_layout(height=height, showlegend=False)
    return fig


def _gauge(familiarity: Familiarity, domain: dict) -> go.Indicator:
    """The score as a bar on a bullet gauge: red (none of the classes), amber (not sure; absent for a two-answer
    model), green (one of them)."""
    flag_below, unsure_below, score = familiarity.flag_below, familiarity.unsure_below, familiarity.score
    top = unsure_below if unsure_below is not None else flag_below
    span = max(top - flag_below, 1.0)
    low, high = min(score, flag_below) - span, max(score, top) + span
    steps = [{"range": [low, flag_below], "color": "#f4c7c3"}, {"range": [top, high], "color": "#c8e6c9"}]
    if unsure_below is not None:
        steps.insert(1, {"range": [flag_below, unsure_below], "color": "#ffe0b2"})
    return go.Indicator(mode="gauge+number", value=score, number={"valueformat": ".2f", "font": {"size": 20}},
                        domain=domain, gauge={"shape": "bullet", "axis": {"range": [low, high]}, "steps": steps,
                                              "bar": {"color": "#424242", "thickness": 0.35}})


def accuracy_vs_time_figure(labels: list[str], seconds: list[float], accuracies: list[float],
                            targets: dict[str, float] | None = None) -> go.Figure:
    """Final test accuracy (%) against training time, one labelled point per run; time on a log axis
    because presets differ by orders of magnitude. `targets` draws named accuracy lines (fractions)."""
    fig = go.Figure(go.Scatter(x=seconds, y=[100 * a for a in accuracies], mode="markers+text", text=labels,
                               textposition="top center", cliponaxis=False,
                               marker=dict(size=12, color=[PALETTE[i % len(PALETTE)] for i in range(len(labels))])))
    for name, value in (targets or {}).items():
        fig.add_hline(y=100 * value, line_dash="dot", line_color="gray", annotation_text=name,
                      annotation_position="top left")
    fig = _layout(fig, "Accuracy vs training time", "training time (s, log scale)", "test accuracy (%)")
    fig.update_xaxes(type="log")
    fig.update_layout(showlegend=False)
    return fig


def embedding_figure(coordinates, labels: list[int], predictions: list[int], classes: list[str],
                     star: tuple[float, float, str] | None = None, title: str = "Similar images") -> go.Figure:
    """The feature map: one point per test image at its 2-D `coordinates`, coloured by its class (one legend entry
    a class, so a click hides it), its index in `customdata`; `star`: (x, y, name) of an uploaded photo."""
    fig = go.Figure()
    for c, name in enumerate(classes):
        members = [i for i, label in enumerate(labels) if label == c]
        fig.add_trace(go.Scatter(
            x=[float(coordinates[i][0]) for i in members], y=[float(coordinates[i][1]) for i in members],
            mode="markers", name=name, marker=dict(size=6, color=PALETTE[c % len(PALETTE)], opacity=0.8),
            customdata=members, text=[f"{name}, predicted {classes[predictions[i]]}" for i in members],
            hovertemplate="test image #%{customdata}: %{text}<extra></extra>"))
    if star is not None:
        fig.add_trace(go.Scatter(x=[star[0]], y=[star[1]], mode="markers+text", name=star[2], text=[star[2]],
                                 textposition="top center", marker=dict(symbol="star", size=22, color="#111",
                                                                        line=dict(color="#fff", width=1.5)),
                                 hovertemplate=f"{star[2]}: your photo<extra></extra>"))
    fig = _layout(fig, title, "", "")
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(height=620, dragmode="lasso", legend=dict(itemsizing="constant"))
    return fig
