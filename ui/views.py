"""Which view shows what, per modality and per task: the one place in `ui/` that names them.

A page asks for the views of a dataset's or a run's modality (`of`) or of a run's task (`evaluation`) and
calls what it gets; it never branches on a modality's or task's name. Adding a modality is one `register`
call here, naming its view functions as "module:function" strings: a view is imported when a page first
asks for it, so the Data page does not load Captum for a table, nor the Explain page pandas' Excel reader.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.errors import GlassboxError
from core.registry import Registry

__all__ = ["MODALITY_VIEWS", "TASK_VIEWS", "ModalityViews", "choices", "evaluation", "of", "view"]


@dataclass(frozen=True)
class ModalityViews:
    """What the pages show of one modality, each a "module:function" path (`view` imports it):

    - `dataset`: the Data page's preview of a stored dataset, called as (studio, record, readd), `readd(options)`
      adding the dataset's own upload again with other ingest choices (a table's target and column roles);
    - `explain`, `predict`: the Explain and Predict pages' views, called as (studio, picked run);
    - `mistakes`: how Evaluate explains the most confident mistakes, called as (subject, run, refs, items,
      predicted) -> (method title, one PNG, HTML string or None per mistake); "" when it has none;
    - `typed_backbone`: the Train page's free-text backbone field (label, placeholder, help), None when the
      modality's backbones come only from its catalog;
    - `holds`: what the Data page's "What it holds" choice calls an upload read as this modality ("a time
      series"), "" when the modality is only ever detected from the upload;
    - `upload_options`: the Data page's fields for this modality's ingest options, called as () -> options, drawn
      when the user chooses the modality for an upload; "" when it has none of its own;
    - `tasks`: views that differ for one of the modality's tasks (a forecast's preview, explanation and
      prediction), by task name; a field left "" there falls back to the modality's own."""

    dataset: str
    explain: str = ""
    predict: str = ""
    mistakes: str = ""
    typed_backbone: dict[str, str] | None = None
    holds: str = ""
    upload_options: str = ""
    tasks: Mapping[str, ModalityViews] = field(default_factory=dict)


MODALITY_VIEWS: Registry[ModalityViews] = Registry("modality view")
TASK_VIEWS: Registry[str] = Registry("task view")
"""Evaluate's detailed view of a run's validation results per task ("module:function", called as (studio,
picked run, modality)): a confusion matrix for classes, a predicted-against-true scatter for values."""

MODALITY_VIEWS.register("images")(ModalityViews(
    dataset="ui.dataset_views:labelled_items", explain="ui.image_explain:show", predict="ui.predict_views:images",
    mistakes="ui.explain_views:image_mistakes",
    typed_backbone=dict(label="...or any timm model name", placeholder="e.g. resnet34 or efficientnet_b0.ra_in1k",
                        help="Overrides the list when filled in. A tag after the dot picks specific weights."),
))
MODALITY_VIEWS.register("text")(ModalityViews(
    dataset="ui.dataset_views:labelled_items", explain="ui.text_explain:show", predict="ui.predict_views:text",
    mistakes="ui.text_explain:mistakes",
    typed_backbone=dict(label="...or any Hugging Face model id or local folder",
                        placeholder="e.g. bert-base-cased or /models/my-finetuned-bert",
                        help="Overrides the list when filled in. From the local Hugging Face cache, a folder written "
                             "by save_pretrained, or the hub when it can be reached; the model's own code never runs."),
))
MODALITY_VIEWS.register("tables")(ModalityViews(
    dataset="ui.table_data:show", explain="ui.table_explain:show", predict="ui.table_predict:show",
    mistakes="ui.table_explain:mistakes", holds="a table (one row per item)",
))
MODALITY_VIEWS.register("series")(ModalityViews(
    dataset="ui.series_data:classes", explain="ui.series_explain:classes", predict="ui.series_predict:classes",
    mistakes="ui.series_explain:mistakes", holds="time series", upload_options="ui.series_data:upload_options",
    tasks={"forecast": ModalityViews(dataset="ui.series_data:forecast", explain="ui.series_explain:forecast",
                                     predict="ui.series_predict:forecast")},
))
TASK_VIEWS.register("classification")("ui.classification_results:show")
TASK_VIEWS.register("regression")("ui.regression_results:show")
TASK_VIEWS.register("forecast")("ui.forecast_results:show")


def of(modality: str, task: str | None = None) -> ModalityViews:
    """The views of `modality`, those registered for `task` in place of the modality's own where it has some;
    GlassboxError when none are registered for the modality."""
    views = MODALITY_VIEWS.get(modality)
    special = views.tasks.get(task) if task else None
    if special is None:
        return views
    return replace(views, tasks={}, **{f.name: getattr(special, f.name) for f in fields(ModalityViews)
                                      if f.name != "tasks" and getattr(special, f.name)})


def choices() -> dict[str, str]:
    """The modalities an upload may be read as on the user's say-so (`holds`), by name: {"tables": "a table (one
    row per item)", ...}, in registration order."""
    return {name: MODALITY_VIEWS.get(name).holds for name in MODALITY_VIEWS if MODALITY_VIEWS.get(name).holds}


def evaluation(task: str) -> Callable[..., Any]:
    """Evaluate's detailed view for runs of `task`."""
    return view(TASK_VIEWS.get(task))


def view(path: str) -> Callable[..., Any]:
    """The function a "module:function" path names. Raises GlassboxError for an empty path (the modality
    has no such view)."""
    if not path:
        raise GlassboxError("this step is not available for this kind of data yet")
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
