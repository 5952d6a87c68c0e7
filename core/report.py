"""A run as one self-contained HTML file, for people who will not run the app: its curves, per-class accuracy,
confusion matrix, test images with GroundTruth/Predicted, most confident mistakes, settings and model card.

Plotly's JavaScript is inlined once and the images are data URIs, so the file opens offline. No Streamlit here:
the Runs and Evaluate pages offer it as a download and `python -m core report` writes it.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io

import plotly.offline

from core.charts import Series, accuracy_figure, confusion_figure, loss_figure, per_class_figure
from core.checkpoints import load_model
from core.data import Dataset
from core.evaluations import folder_for, remembered_evaluate
from core.events import curves
from core.images import enlarge
from core.interpret import top_losses
from core.runs import Run

RIGHT, WRONG = "#2ca02c", "#d62728"
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .muted{color:#666} table{border-collapse:collapse;margin:.5em 0}
td,th{border-bottom:1px solid #ddd;padding:.25em .8em;text-align:left} .grid{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:128px;font-size:12px;text-align:center} figure img{width:128px;image-rendering:pixelated}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1em}"""


def _image(tensor, border: str) -> str:
    buffer = io.BytesIO()
    enlarge(tensor, 4, border=border).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure(fig, name: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=name, config={"displaylogo": False})


def _table(rows: dict) -> str:
    return "<table>" + "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in rows.items()) + "</table>"


def _grid(items: list[tuple[str, str]]) -> str:
    return '<div class="grid">' + "".join(f'<figure><img src="{src}" alt="{html.escape(caption)}">'
                                          f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                                          for src, caption in items) + "</div>"


def run_report(run: Run, dataset: Dataset | None, images: int = 24) -> str:
    """The report of a finished run as an HTML string. With the test set at hand (`dataset`), the model is
    evaluated again for the image sections; without it they say so and the rest is still there."""
    config, metrics = run.config(), run.metrics()
    if not metrics:
        raise ValueError(f"run {run.id} has no results yet (it has not finished); a report needs a finished run")
    classes = metrics["classes"]
    c = curves(run.events())
    train = config.get("train", {})
    parts = [f"<h1>Run {html.escape(run.id)}</h1>",
             f'<p class="muted">{html.escape(config.get("preset") or "custom")} settings · '
             f'{html.escape(str(config.get("device", "?")))} · report written '
             f'{dt.datetime.now().strftime("%Y-%m-%d %H:%M")}</p>',
             f"<p><b>{100 * metrics['accuracy']:.2f} %</b> of the {metrics['total']:,} test images right after "
             f"{metrics.get('epochs', train.get('epochs', '?'))} epochs and {metrics.get('train_seconds', 0):.1f} s "
             "of training.</p>",
             '<h2>Learning curves</h2><div class="charts">',
             _figure(loss_figure([Series(run.id, c["images_seen"], c["loss"])]), "loss"),
             _figure(accuracy_figure([Series(run.id, c["epoch"], c["test_accuracy"], c["val_accuracy"])],
                                     chance=1 / len(classes)), "accuracy"),
             "</div><h2>Per class</h2>",
             _figure(per_class_figure(list(metrics["per_class"]), list(metrics["per_class"].values())), "per-class"),
             _figure(confusion_figure(metrics["confusion"], classes), "confusion"),
             *_image_sections(run, dataset, classes, images),
             "<h2>Model card</h2>", _table(_card(config, metrics, classes)), "<h2>Settings</h2>", _table(train)]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Run {html.escape(run.id)}</title>'
            f"<style>{STYLE}</style><script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            + "\n".join(parts) + "</body></html>")


def _image_sections(run: Run, dataset: Dataset | None, classes: list[str], images: int) -> list[str]:
    """The first test images and the most confident mistakes, from the model evaluated again; a line saying why
    not where the test set is not at hand (or is not the one the run's classes start with)."""
    if dataset is None or list(dataset.classes) != classes[:len(dataset.classes)]:  # a taught one has more
        return ['<h2>Test images</h2><p class="muted">The test set was not at hand when this report was '
                "written, so it has no image sections.</p>"]
    loaded = load_model(run.path)
    result = remembered_evaluate(loaded.model, dataset.test, loaded.normalizer(), num_classes=len(classes),
                                 tta=loaded.tta, save_to=folder_for(dataset)).result
    labels = dataset.test.labels
    shown = range(min(images, len(labels)))
    return ["<h2>Test images</h2>", _grid([
        (_image(dataset.test.images[i], RIGHT if result.predictions[i] == labels[i] else WRONG),
         f"GroundTruth: {classes[labels[i]]} · Predicted: {classes[result.predictions[i]]}") for i in shown]),
            "<h2>Most confident mistakes</h2>", _grid([
        (_image(dataset.test.images[m["index"]], WRONG),
         f"{classes[m['label']]} → {classes[m['predicted']]} ({100 * m['confidence']:.0f} %)")
        for m in top_losses(result, labels, k=16)])]


def _card(config: dict, metrics: dict, classes: list[str]) -> dict[str, str]:
    """The model card's rows: what was trained on what, how well, and where the report's figures come from."""
    train = config.get("train", {})
    card = {"model": f"{train.get('model', '?')} (width {train.get('width', '?')})", "data": config.get("source", "?"),
            "classes": ", ".join(classes), "test accuracy": f"{100 * metrics['accuracy']:.2f} %",
            "training time": f"{metrics.get('train_seconds', 0):.1f} s"}
    if "forgetting" in metrics:  # a taught run (core/teach.py)
        f = metrics["forgetting"]
        card["taught"] = (f"{classes[-1]} from {len(metrics.get('answers', []))} photos; the ten classes on the "
                          f"first {f['test_images']:,} test images {100 * f['before']:.1f} % before, "
                          f"{100 * f['after_mixed']:.1f} % after with CIFAR-10 mixed in, "
                          f"{100 * f['after_alone']:.1f} % from the photos alone")
    if "calibration_from" in metrics:
        card["temperature"] = f"{metrics['temperature']:.3f} (the base model's, {metrics['calibration_from']})"
    elif "temperature" in metrics:
        card["temperature"] = f"{metrics['temperature']:.3f} (fitted on {train.get('val_images')} validation images)"
        card["calibration error (test)"] = (f"{100 * metrics['test_ece']:.1f} % as trained, "
                                            f"{100 * metrics['test_ece_calibrated']:.1f} % with the temperature")
    if "ood_threshold" in metrics:
        card["none of the ten"] = f"{metrics.get('ood_score', 'energy')} score below {metrics['ood_threshold']:.3f}"
    return card
