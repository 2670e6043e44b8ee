"""Headless Glassbox: `python -m core datasets|backbones|train|search|runs|explain|predict ...`.

Contract: exit 0 on success; on any failure a non-zero exit and one line on stderr starting with
`error:` (no traceback; set GLASSBOX_DEBUG=1 to see one). With `--json` the last line of stdout is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from core import data, datasets, runs, tasks
from core.config import CLASS_WEIGHTS, MODES, TrainConfig
from core.data import BadFilesError
from core.data.labels import MERGE_OPTION
from core.errors import GlassboxError
from core.store import Store
from core.workspace import Workspace

Handler = Callable[[argparse.Namespace, Workspace, Store], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        ws = Workspace.from_env()
        return args.handler(args, ws, Store(ws.db_path))
    except BadFilesError as exc:
        return _fail(f"{exc}; fix them, or add --drop-bad to leave them out")
    except GlassboxError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # `... | head` closed the pipe: the reader has what it wanted
        sys.stderr.close()
        return 0
    except Exception as exc:
        if os.environ.get("GLASSBOX_DEBUG"):
            traceback.print_exc()
        return _fail(f"internal error: {type(exc).__name__}: {exc}")


def _fail(message: str, code: int = 1) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _emit(args: argparse.Namespace, value: Any, text: str) -> None:
    print(json.dumps(value, default=str) if getattr(args, "json", False) else text)


# datasets -------------------------------------------------------------------------------------------
def _datasets_add(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    record = datasets.add(ws, store, Path(args.path), name=args.name, modality=args.modality,
                          drop_bad=args.drop_bad, options=_ingest_options(args))
    info = record.info
    _print_problems(info)
    _emit(args, {"dataset_id": record.id, "name": record.name, "modality": record.modality,
                 "task": info.get("task", "classification"), **info},
          f"{record.id}  {record.name}: {_described(info)}")
    return 0


def _described(info: dict[str, Any]) -> str:
    """"888 items, 2 classes" or "1,200 items, regression on 'price'"."""
    if info.get("task", "classification") == "classification":
        return f"{info['num_items']} items, {len(info['classes'])} classes"
    return f"{info['num_items']} items, {info['task']} on {info['target']!r}"


def _print_problems(info: dict[str, Any]) -> None:
    """A new dataset's warnings and what was decided in reading it (the sheet, the header row, renamed
    columns, the target, the season) on stderr, one a line, as the Data page shows them."""
    for problem in info.get("problems", []):
        print(f"{problem['level']}: {problem['message']}", file=sys.stderr)
    for note in info.get("notes", []) if isinstance(info.get("notes"), list) else []:
        print(f"note: {note}", file=sys.stderr)


def _datasets_list(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    rows = store.list_datasets()
    _emit(args, [{"dataset_id": d.id, "name": d.name, "modality": d.modality, "num_items": d.info["num_items"],
                  "task": d.info.get("task", "classification"), "target": d.info.get("target"),
                  "classes": d.info["classes"]} for d in rows],
          "\n".join(f"{d.id}  {d.modality:8} {d.info['num_items']:6}  {d.name}"
                    + (f"  ({d.info['task']} on {d.info['target']!r})" if d.info.get("target") else "")
                    for d in rows) or "no datasets")
    return 0


def _datasets_delete(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    record = datasets.resolve(store, args.dataset)
    datasets.delete(ws, store, record.id)
    _emit(args, {"deleted": record.id}, f"deleted {record.id}")
    return 0


# backbones ------------------------------------------------------------------------------------------
def _backbones_list(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    from core import models

    rows = [b for name in ([args.modality] if args.modality else data.names())
            for b in models.family(name).catalog()]
    _emit(args, [asdict(b) for b in rows],
          "\n".join(f"{b.modality:8} {b.name:28} {b.params_m or 0:7.1f} M  {b.input_size or '':>4}  "
                    f"weights: {b.weights}" for b in rows))
    return 0


# train ----------------------------------------------------------------------------------------------
def _train(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    config = _train_config(args, ws, store)
    run = runs.create(ws, store, config)
    if args.detach:
        _emit(args, run.summary(), f"{run.id} {run.status}")
        return 0
    return _follow(args, ws, store, run.id)


def _train_config(args: argparse.Namespace, ws: Workspace, store: Store) -> TrainConfig:
    from core.training import presets

    if args.config:
        config = TrainConfig.load(Path(args.config))
    else:
        if not args.data:
            raise GlassboxError("give --data PATH (a dataset file or folder, or a dataset id) or --config FILE")
        config = TrainConfig(dataset_id=_dataset_for(args, ws, store))
        dataset = store.get_dataset(config.dataset_id)
        task = dataset.info.get("task", "classification")
        if dataset.modality != config.modality:  # TrainConfig's defaults are the images ones
            from core import models

            config = config.updated(modality=dataset.modality, task=task,
                                    backbone=models.family(dataset.modality).catalog()[0].name)
        config = presets.apply(config, args.preset or presets.DEFAULT)
    overrides = {
        key: getattr(args, key)
        for key in ("backbone", "epochs", "batch_size", "lr", "image_size", "max_length", "mode", "device", "seed",
                    "weights", "precision", "class_weights", "early_stopping_patience")
        if getattr(args, key) is not None
    }
    return config.updated(**overrides)


def _dataset_for(args: argparse.Namespace, ws: Workspace, store: Store) -> str:
    path = Path(args.data)
    if path.exists():
        try:
            record = datasets.add(ws, store, path, modality=args.modality, drop_bad=args.drop_bad,
                                  options=_ingest_options(args))
        except datasets.DuplicateDatasetError as exc:  # training on a file already stored trains on its dataset
            print(f"dataset {exc.existing.id} ({exc.existing.name}): the same file, already stored", file=sys.stderr)
            return exc.existing.id
        _print_problems(record.info)
        print(f"dataset {record.id}: {_described(record.info)}", file=sys.stderr)
        return record.id
    record = datasets.resolve(store, args.data)
    given = sorted(_ingest_options(args))
    if given:  # the choices made when the dataset was added stand; silently training on them would mislead
        raise GlassboxError(f"{', '.join('--' + g.replace('_', '-') for g in given)} apply when a file is added: "
                            f"dataset {record.id} is already stored ({_described(record.info)}); give the file "
                            "with --data to add it again with these choices")
    return record.id


def _ingest_options(args: argparse.Namespace) -> dict[str, Any]:
    """Dataset-level choices (which columns hold the text and the label, merging similar labels) go to
    ingest, not the run config."""
    keys = ("text_column", "label_column", "target", "task", "sheet", "time", "series_id", "channel", "value",
            "horizon", "context", "season")
    options: dict[str, Any] = {key: getattr(args, key) for key in keys if getattr(args, key, None)}
    if args.merge_similar_labels:
        options[MERGE_OPTION] = True
    if getattr(args, "role", None):
        options["roles"] = dict(_pair(value) for value in args.role)
    if getattr(args, "drop_columns", None):
        options["drop_columns"] = [name.strip() for name in args.drop_columns.split(",") if name.strip()]
    return options


def _pair(value: str) -> tuple[str, str]:
    column, sep, role = value.rpartition("=")
    if not sep or not column:
        raise GlassboxError(f"--role takes COLUMN=ROLE, not {value!r}")
    return column, role


def _follow(args: argparse.Namespace, ws: Workspace, store: Store, run_id: str) -> int:
    """Wait for a run, echoing its events to stderr, and exit by its outcome."""
    seen = 0
    while True:
        run = store.get_run(run_id)
        for event in store.events(run_id, after_id=seen):
            seen = event["id"]
            if not args.json or args.verbose:
                print(f"[{time.strftime('%H:%M:%S', time.localtime(event['ts']))}] {event['message']}",
                      file=sys.stderr)
        if run.is_terminal or run.status == "interrupted":
            break
        if run.is_active:
            runs.reconcile(ws, store)
        time.sleep(0.2)
    summary = run.summary()
    metrics = summary["metrics"]
    _emit(args, summary, f"{run_id} {run.status}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                                                             if isinstance(v, float)))
    if run.status != "completed":
        raise GlassboxError(f"run {run_id} {run.status}" + (f": {run.error}" if run.error else ""))
    return 0


# runs -----------------------------------------------------------------------------------------------
def _runs_list(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    runs.reconcile(ws, store)
    rows = store.list_runs()
    _emit(args, [r.summary() for r in rows],
          "\n".join(f"{r.id}  {r.status:11} {r.backbone:24} epoch {r.epoch}/{r.total_epochs}" for r in rows)
          or "no runs")
    return 0


def _runs_show(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    runs.reconcile(ws, store)
    run = store.get_run(args.run_id)
    summary = {**run.summary(), "config": run.config, "events": store.events(run.id, limit=20)}
    _emit(args, summary, json.dumps(summary, indent=2, default=str))
    return 0


def _runs_cancel(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    run = runs.cancel(ws, store, args.run_id, wait_s=runs.CANCEL_GRACE_S + 5)
    _emit(args, run.summary(), f"{run.id} {run.status}")
    return 0


def _runs_resume(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    run = runs.resume(ws, store, args.run_id)
    if args.wait:
        return _follow(args, ws, store, run.id)
    _emit(args, run.summary(), f"{run.id} {run.status}")
    return 0


def _runs_compare(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """Runs side by side (`core.comparison.compare`): their figures, the settings that differ, the best run."""
    from core import comparison

    chosen = [store.get_run(run_id) for run_id in args.run_ids]
    found = comparison.compare(chosen, {run.id: store.metrics(run.id) for run in chosen})
    lines = []
    for run in found.runs:
        headline = found.headlines[found.task_of(run.id)]
        value = found.headline(run.id)
        lines.append(f"{'*' if found.is_best(run.id) else ' '} {run.id}  {run.status:11} {run.backbone:24} "
                     f"val {headline.title} {'-' if value is None else f'{value:.4g}'}")
    lines.append(f"differing settings: {', '.join(found.differing) or 'none'}")
    if len({run.dataset_id for run in found.runs}) > 1:
        lines.append("these runs are on different datasets: their figures are not comparable, so none is named best")
    _emit(args, found.to_json(), "\n".join(lines))
    return 0


def _runs_logs(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    from core import jobs

    run = store.get_run(args.run_id)
    print(jobs.backend(run.backend, ws, store).logs(run, tail=args.tail))
    return 0


# search ---------------------------------------------------------------------------------------------
def _search(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """A hyperparameter search (`core.search`): its trials are ordinary runs; prints each trial as it ends
    (stderr) and the best one's run, value and settings."""
    from core import search

    if args.spec:  # a search the studio saved and started in the background
        spec = search.load(ws, Path(args.spec)).validate(store)
    else:
        given = [search.Param.parse(text) for text in args.param or ()]  # a typo fails before data is added
        base = _train_config(args, ws, store)
        spec = search.SearchSpec.new(store, base, given or search.default_params(base), trials=args.trials,
                                     timeout_s=args.timeout, parallel=args.parallel)
    metric = spec.metric
    print(f"search {spec.id}: {spec.trials} trial(s), {spec.parallel} at a time, over "
          + "; ".join(p.describe() for p in spec.params), file=sys.stderr)

    def said(row: search.TrialRow) -> None:
        value = f": val {metric.title} {row.value:.4g}" if row.value is not None else ""
        print(f"trial {row.trial} {row.state}{value} ({row.run}; "
              + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.params.items())
              + ")" + (f": {row.error}" if row.error else ""), file=sys.stderr)

    result = search.run(ws, store, spec, on_trial=said)
    best = result.best
    _emit(args, result.to_dict(), f"{spec.id}: best trial {best.trial}, run {best.run}, val {metric.title} "
                                  f"{best.value:.4g} with {best.params}" if best else f"{spec.id}: no trial completed")
    if best is None:
        raise GlassboxError(f"search {spec.id}: no trial completed (see each trial's run)")
    return 0


# explain --------------------------------------------------------------------------------------------
def _explain(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """Explain one input with a finished run's model, the way its modality explains (`_EXPLAIN_COMMANDS`)."""
    run = store.get_run(args.run_id)
    if run.status != "completed":
        raise GlassboxError(f"run {run.id} is {run.status}: explain needs a completed run")
    return _EXPLAIN_COMMANDS[run.modality](args, ws, run.id, run.modality)


def _explain_image(args: argparse.Namespace, ws: Workspace, run_id: str, modality: str) -> int:
    """Explain one image with a finished run's model: overlay PNG, prediction and faithfulness figures."""
    from core.artifacts import RunFiles
    from core.data.pictures import load_image
    from core.explain import ExplainOptions, explain, faithfulness, load_subject, methods, rendering, resolve_target

    args.method = args.method or "gradcam"
    if not args.input:
        raise GlassboxError("give --input IMAGE: the image to explain")
    methods(modality).get(args.method)  # an unknown method fails before the model loads
    source = Path(args.input)
    if not source.is_file():
        raise GlassboxError(f"{source}: no such file")
    options = ExplainOptions(ig_steps=args.steps, ig_baseline=args.baseline, smoothgrad=args.smoothgrad,
                             occlusion_window=args.window, occlusion_stride=args.stride).validate()
    subject = load_subject(RunFiles(ws.run_dir(run_id)), ws.cache_dir)
    inputs = subject.tensor(load_image(source, subject.image_size))
    probs = subject.probabilities(inputs)[0]
    predicted = int(probs.argmax())
    target = resolve_target(subject.classes, args.target, predicted)
    progress = _progress_printer(args.method) if sys.stderr.isatty() and not args.json else None
    result = explain(subject, inputs, target, args.method, options, progress)
    figures = faithfulness.measure(subject, inputs, result, options, sensitivity_samples=args.sensitivity)
    out = Path(args.out) if args.out else ws.run_dir(run_id) / "explanations" / f"{source.stem}-{args.method}.png"
    rendering.save_overlay(subject.picture(inputs), result.attribution, out)
    top = sorted(range(len(probs)), key=lambda i: -probs[i])[:5]
    value = {
        "run_id": run_id, "input": str(source), "predicted": subject.classes[predicted],
        "probability": round(float(probs[predicted]), 4), "target": subject.classes[target],
        "target_probability": round(float(probs[target]), 4), "method": args.method,
        "seconds": round(result.seconds, 4), "faithfulness": figures.summary(), "notes": list(result.notes),
        "top": [{"class": subject.classes[i], "probability": round(float(probs[i]), 4)} for i in top],
        "out": str(out),
    }
    _emit(args, value, f"predicted {value['predicted']} ({value['probability']:.2f}); {args.method} map of "
                       f"{value['target']} in {result.seconds:.2f} s\n{figures.verdict}\nwrote {out}")
    return 0


def _explain_text(args: argparse.Namespace, ws: Workspace, run_id: str, modality: str) -> int:
    """Explain one text with a finished run's model: word scores, prediction and the deletion check."""
    from core.artifacts import RunFiles
    from core.explain import ExplainOptions, load_subject, methods
    from core.explain.text import explain_text

    if not args.text:
        raise GlassboxError('give --text "...": the text to explain')
    method = args.method or "ig"
    methods(modality).get(method)  # an unknown method fails before the model loads
    options = ExplainOptions(ig_steps=args.steps).validate()
    subject = load_subject(RunFiles(ws.run_dir(run_id)), ws.cache_dir)
    value = {"run_id": run_id, **explain_text(subject, args.text, method, args.target, options, args.top_k)}
    shown = ", ".join(f"{word} ({score:+.3f})" for word, score in value["top_words"]["for"][:5]) or "none"
    check = value["faithfulness"]
    _emit(args, value, f"predicted {value['predicted']} ({value['probability']:.2f}); words for {value['target']} "
                       f"({method}): {shown}\ndeleting the top {check['k']} word(s) lowers its probability by "
                       f"{check['topk_drop']:.3f}, deleting {check['k']} random word(s) by {check['random_drop']:.3f}"
                       + "".join(f"\nnote: {note}" for note in value["notes"]))
    return 0


def _explain_row(args: argparse.Namespace, ws: Workspace, run_id: str, modality: str) -> int:
    """Explain one table row with a finished run's model: a signed attribution per source column, the
    prediction and the faithfulness check (top-k columns set to their baseline against k random ones)."""
    import pandas as pd

    from core.artifacts import RunFiles
    from core.data.tables import rows_to_predict
    from core.explain import load_subject, methods
    from core.explain.tables import explain_row

    if not args.row:
        raise GlassboxError('give --row \'{"column": value, ...}\': the row to explain, as a JSON object')
    try:
        row = json.loads(args.row)
    except ValueError as exc:
        raise GlassboxError(f"--row is not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise GlassboxError("--row must be a JSON object of column: value")
    method = args.method or "ig"
    methods(modality).get(method)  # an unknown method fails before the model loads
    subject = load_subject(RunFiles(ws.run_dir(run_id)), ws.cache_dir)
    # a column the row does not give is missing, as an empty cell would be: imputed, and said in the notes
    needed = [c["name"] for c in subject.column_descriptions if not c["dropped"] and c["role"] != "target"]
    unknown = sorted(set(row) - {c["name"] for c in subject.column_descriptions})
    if unknown:
        raise GlassboxError(f"the model has no column {unknown[0]!r} (its columns: {', '.join(needed)})")
    cells = {name: row.get(name) for name in needed}
    frame = pd.DataFrame([{k: None if v is None or str(v).strip() == "" else str(v).strip() for k, v in cells.items()}])
    read = rows_to_predict(frame, subject.column_descriptions, subject.target_column)
    if read.problems[0]:
        raise GlassboxError(f"the row cannot be used: {read.problems[0]}")
    encoded = subject.encoder.transform(read.typed)
    value = {"run_id": run_id, **explain_row(subject, encoded["numeric"], encoded["categorical"], method,
                                             args.target, k=args.top_k)}
    absent = [name for name in needed if name not in row]
    if absent:
        value["notes"].append(f"not given, so treated as missing (imputed): {', '.join(absent)}")
    ranked = list(value["attributions"].items())[:5]
    shown = ", ".join(f"{name} ({score:+.3f})" for name, score in ranked)
    check = value["faithfulness"]
    _emit(args, value, f"predicted {value['predicted']}; columns that weigh most ({method}): {shown}\n"
                       f"setting the top {check['k']} column(s) to their baseline changes {check['measure']} by "
                       f"{check['topk_change']:.3f}, {check['k']} random column(s) by {check['random_change']:.3f}"
                       + "".join(f"\nnote: {note}" for note in value["notes"]))
    return 0


def _explain_series(args: argparse.Namespace, ws: Workspace, run_id: str, modality: str) -> int:
    """Explain one series with a finished run's model: attributions over time steps (per channel), the prediction
    (a class, or the next H values) and the deletion check (top steps set to the baseline against random ones).
    A series to classify is the N-th of `--series FILE`; a forecast is made at the end of `--series FILE` (a
    history like the training file) or, without it, of the training series."""
    from core.artifacts import RunFiles
    from core.explain import load_subject, methods
    from core.explain.series import explain_series

    method = args.method or "ig"
    methods(modality).get(method)  # an unknown method fails before the model loads
    files = RunFiles(ws.run_dir(run_id))
    subject = load_subject(files, ws.cache_dir)
    dataset_dir, info = _run_dataset(ws, files)
    inputs, about = _series_inputs(args, subject, dataset_dir, info)
    value = {"run_id": run_id, "series": about, **explain_series(subject, inputs, method, args.target,
                                                                   k=args.top_k)}
    check = value["faithfulness"]
    answer = (f"forecast {', '.join(f'{v:.4g}' for v in value['forecast'][:5])}"
              + (" ..." if len(value["forecast"]) > 5 else "") if "forecast" in value
              else f"predicted {value['predicted']} ({value['probability']:.2f})")
    _emit(args, value, f"{about}: {answer}; {method} over {value['length']} steps\n"
                       + " ".join(f"{k}={v}" for k, v in check.items() if isinstance(v, (int, float)))
                       + "".join(f"\nnote: {note}" for note in value["notes"]))
    return 0


def _run_dataset(ws: Workspace, files: Any) -> tuple[Path, dict[str, Any]]:
    """The folder and info of the dataset a run trained on, which new series are read like."""
    config = TrainConfig.load(files.config)
    try:
        dataset = Store(ws.db_path).get_dataset(config.dataset_id)
    except GlassboxError:
        raise GlassboxError(f"the run's dataset {config.dataset_id} was deleted: new series cannot be read "
                            "the way it read its own") from None
    return ws.dataset_dir(dataset.id), dataset.info


def _series_inputs(args: argparse.Namespace, subject: Any, dataset_dir: Path,
                   info: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One prepared series to explain, and what it is in words."""
    from core.data.series import forecast_inputs, normalise, read_series

    source = Path(args.series) if args.series else None
    if source is not None and not source.is_file():
        raise GlassboxError(f"{source}: no such file")
    if subject.forecasts:
        inputs, times, _ = forecast_inputs(dataset_dir, info, subject.fitted, history=source, sheet=args.sheet)
        return inputs, f"forecast from {times[0]}"
    if source is None:
        raise GlassboxError("give --series FILE: the series to explain (wide or long form, like the training file)")
    found = read_series(source, info, sheet=args.sheet)
    index = args.index or 0
    if not 0 <= index < len(found.ids):
        raise GlassboxError(f"{source.name} holds {len(found.ids)} series: --index must be 0 to {len(found.ids) - 1}")
    values = normalise(found.values[index:index + 1], found.mask[index:index + 1], subject.fitted)[0]
    return {"values": values, "mask": found.mask[index]}, f"series {found.ids[index]}"


_EXPLAIN_COMMANDS: dict[str, Callable[[argparse.Namespace, Workspace, str, str], int]] = {
    "images": _explain_image, "text": _explain_text, "tables": _explain_row, "series": _explain_series,
}


# predict --------------------------------------------------------------------------------------------
_JSON_ROWS = 1000
_PRINTED_ROWS = 50


def _predict(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """A finished run's predictions on new texts (a CSV or --text) or images (files or folders), as a
    CSV (all rows) and a summary (the first rows in --json)."""
    from core.artifacts import RunFiles
    from core.training_stats import training_stats

    if args.bundle:
        return _predict_with_bundle(args)
    if not args.run_id:
        raise GlassboxError("name the run to predict with, or give --bundle FILE.zip")
    run = store.get_run(args.run_id)
    if run.status != "completed":
        raise GlassboxError(f"run {run.id} is {run.status}: predict needs a completed run")
    files = RunFiles(ws.run_dir(run.id))
    stats = training_stats(files)
    # inputs are read before the model loads, so a bad file fails in a blink
    table, source = _PREDICT_COMMANDS[run.modality](args, ws, files, stats, run.modality)
    out = Path(args.out) if args.out else None
    if out is None and source is not None:
        out = ws.run_dir(run.id) / "predictions" / f"{source.stem}.csv"
    return _report_predictions(args, {"run_id": run.id}, table, out, data.modality(run.modality).item_noun)


def _users_hash_password(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """Print `core.accounts.hash_password` of a password typed at a prompt (not echoed) or piped on stdin."""
    import getpass

    from core.accounts import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    print(hash_password(password))
    return 0


def _export(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    """Export a completed run as a bundle (`core.export.export_run`) and say what it holds and how far its ONNX
    model and a quantised one agree with the run's own."""
    from core.export import export_run

    run = store.get_run(args.run_id)
    if run.status != "completed":
        raise GlassboxError(f"run {run.id} is {run.status}: export needs a completed run")
    suffix = f"-{args.quantize}" if args.quantize else ""
    out = Path(args.out) if args.out else ws.run_dir(run.id) / "export" / f"{run.id}{suffix}.zip"
    if out.suffix.lower() != ".zip":
        raise GlassboxError(f"{out}: the bundle is a zip; name it FILE.zip")
    if out.is_dir():
        raise GlassboxError(f"{out} is a folder: name the zip to write, e.g. {out / (run.id + suffix + '.zip')}")
    value = export_run(ws, store, run.id, out, args.quantize)
    lines = [f"wrote {out} ({sum(value['files'].values()) / 1e6:.1f} MB, {len(value['files'])} files)",
             f"fp32 ONNX against PyTorch on the validation inputs: largest difference "
             f"{value['onnx_max_abs_diff']:.2g}"
             + (f", same top class for {value['top1_agreement']:.1%}" if "top1_agreement" in value else "")]
    for part in ("val", "test"):
        changed = sorted(k for k in value if k.startswith(f"{part}_") and k.endswith("_before"))
        for key in changed:
            name = key[len(part) + 1:-len("_before")]
            after = value[key[: -len("before")] + "after"]
            lines.append(f"{args.quantize} {part} {name}: {value[key]:.4g} before, {after:.4g} after")
    if args.quantize:
        lines.append(f"the bundle's model is the {args.quantize} one ({value.get('quantize_method', '')}); the fp32 "
                     "model.pt2 and model.safetensors are left out: export without --quantize for them")
    if "latency_ms_before" in value:
        lines.append(f"latency per item (CPU, 1 thread): {value['latency_ms_before']:.2f} ms before, "
                     f"{value['latency_ms_after']:.2f} ms after; model {value['size_before'] / 1e6:.1f} MB before, "
                     f"{value['size_after'] / 1e6:.1f} MB after")
    lines.append("run it elsewhere: unzip it, then pip install -r requirements.txt && python predict.py INPUT...")
    _emit(args, {"run_id": run.id, "out": str(out), **value}, "\n".join(lines))
    return 0


def _predict_with_bundle(args: argparse.Namespace) -> int:
    """Predictions of an exported bundle (`core.export.bundled`), in a workspace that may never have seen its run:
    the same table `predict.py` inside the bundle prints."""
    from core.export.bundled import predict_bundle

    bundle = Path(args.bundle)
    inputs = [Path(name) for name in ([args.run_id] if args.run_id else []) + list(args.inputs)]
    if args.text:
        raise GlassboxError("with --bundle, give texts as a .txt or CSV file")
    if not inputs:
        raise GlassboxError("give the files to predict on after --bundle FILE.zip")
    table = predict_bundle(bundle, inputs, text_column=args.text_column)
    out = Path(args.out) if args.out else None
    return _report_predictions(args, {"run_id": None, "bundle": str(bundle)}, table, out, str(table.columns[0]))


def _report_predictions(args: argparse.Namespace, head: dict[str, Any], table: Any, out: Path | None,
                        kind: str) -> int:
    """Write `table` to `out` (when given) and print its summary, or one JSON object (`head` first) with --json."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    if "forecast" in table:
        return _emit_forecast(args, head, table, out)
    failed = int((table["error"] != "").sum())
    if len(table) and bool(table["predicted"].isna().all()):  # a script must be able to tell nothing was predicted
        shown = "; ".join(f"{row}: {why}" for row, why in zip(table.iloc[:3, 0], table["error"].iloc[:3],
                                                                strict=True))
        raise GlassboxError(f"none of the {len(table)} input(s) could be predicted ({shown}"
                            + ("; ..." if len(table) > 3 else "") + ")" + (f"; see {out}" if out else ""))
    classified = "confidence" in table
    counts = {str(k): int(v) for k, v in table["predicted"].value_counts().items()} if classified else {}
    rows = json.loads(table.head(_JSON_ROWS).to_json(orient="records"))
    value = {**head, "count": len(table), "counts": counts, "errors": failed,
             "out": str(out) if out else None, "predictions": rows, "truncated": len(table) > _JSON_ROWS}
    cut = int(table["cut_off"].sum()) if "cut_off" in table else 0
    value["cut_off"] = cut
    predicted = table["predicted"].dropna()
    lines = [f"{len(table)} input(s): " + (", ".join(f"{k} {v}" for k, v in counts.items()) if classified else
                                           f"predicted {predicted.min():.4g} to {predicted.max():.4g}"
                                           if len(predicted) else "none predicted")]
    if cut:
        lines.append(f"{cut} text(s) are longer than the model's max length: only their first tokens were read "
                     "(cut_off column)")
    value["unlike_training"] = unlike = int((table["unlike_training"] != "").sum()) \
        if "unlike_training" in table else 0
    if unlike:
        lines.append(f"{unlike} input(s) look unlike the training data: trust their predictions less "
                     "(unlike_training column)")
    if out is not None:
        if failed:
            lines.append(f"{failed} input(s) with a problem: see the error column")
        lines.append(f"wrote {out}")
    else:
        lines += [_printed(row, kind) for row in rows[:_PRINTED_ROWS]]
        if len(table) > _PRINTED_ROWS:
            lines.append(f"... and {len(table) - _PRINTED_ROWS} more: give --out FILE.csv for them all")
    _emit(args, value, "\n".join(lines))
    return 0


def _predict_texts(args: argparse.Namespace, ws: Workspace, files: Any, stats: Any,
                   modality: str) -> tuple[Any, Path | None]:
    from core import prediction
    from core.explain import load_subject

    texts, problems, others, source = _texts_to_predict(args)
    return prediction.texts(load_subject(files, ws.cache_dir), texts, problems, others, stats), source


def _predict_images(args: argparse.Namespace, ws: Workspace, files: Any, stats: Any,
                    modality: str) -> tuple[Any, Path | None]:
    from core import prediction
    from core.explain import load_subject

    if args.text:
        raise GlassboxError(f"this run classifies {modality}: give image files or folders, not --text")
    if not args.inputs:
        raise GlassboxError("give one or more image files, folders or zips to predict on")
    with prediction.image_files([Path(name) for name in args.inputs], ws.staging_dir) as (paths, names):
        return prediction.images(load_subject(files, ws.cache_dir), paths, names, stats), None


def _predict_rows(args: argparse.Namespace, ws: Workspace, files: Any, stats: Any,
                  modality: str) -> tuple[Any, Path | None]:
    from core import prediction
    from core.data.tables import rows_to_predict

    if args.text or len(args.inputs) != 1:
        raise GlassboxError("give one CSV, TSV, Excel or Parquet file of rows to predict on")
    source = Path(args.inputs[0])
    if not source.is_file():
        raise GlassboxError(f"{source}: no such file")
    subject = prediction.TableSubject(files, ws.cache_dir)
    read = rows_to_predict(source, subject.columns, subject.target, sheet=args.sheet)
    return prediction.rows(subject, read), source


def _predict_series(args: argparse.Namespace, ws: Workspace, files: Any, stats: Any,
                    modality: str) -> tuple[Any, Path | None]:
    """Classes of the series in one file, or the next H values after a history (default: the training series'
    end), with `--future` covariates over the horizon."""
    from core import prediction
    from core.data.series import forecast_inputs, read_series
    from core.explain import load_subject

    if args.text or len(args.inputs) > 1:
        raise GlassboxError("give one file of series (or, to forecast, of history) to predict on")
    source = Path(args.inputs[0]) if args.inputs else None
    if source is not None and not source.is_file():
        raise GlassboxError(f"{source}: no such file")
    subject = load_subject(files, ws.cache_dir)
    dataset_dir, info = _run_dataset(ws, files)
    if subject.forecasts:
        future = Path(args.future) if args.future else None
        inputs, times, notes = forecast_inputs(dataset_dir, info, subject.fitted, history=source, future=future,
                                               sheet=args.sheet)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return prediction.forecast(subject, inputs, times), source
    if source is None:
        raise GlassboxError("give a file of series to classify (wide or long form, like the training file)")
    return prediction.series(subject, read_series(source, info, sheet=args.sheet)), source


_PREDICT_COMMANDS: dict[str, Callable[..., tuple[Any, Path | None]]] = {
    "images": _predict_images, "text": _predict_texts, "tables": _predict_rows, "series": _predict_series,
}


def _emit_forecast(args: argparse.Namespace, head: dict[str, Any], table: Any, out: Path | None) -> int:
    """A forecast's steps (time, forecast, interval) as JSON (`head` first) or lines."""
    rows = json.loads(table.to_json(orient="records"))
    value = {**head, "count": len(table), "horizon": len(table), "out": str(out) if out else None,
             "predictions": rows}
    lines = [f"{row['time']}  {row['forecast']:.4g}"
             + (f"  [{row['lower']:.4g}, {row['upper']:.4g}]" if row.get("lower") is not None else "")
             for row in rows]
    _emit(args, value, "\n".join(lines + ([f"wrote {out}"] if out else [])))
    return 0


def _printed(row: dict[str, Any], kind: str) -> str:
    """One prediction as a line: the class and confidence, what to distrust about it, and the input."""
    if row["predicted"] is None or (isinstance(row["predicted"], float) and row["predicted"] != row["predicted"]):
        return f"not read ({row['error']}): {row[kind]}"
    flags = [row["error"]] if row["error"] else []
    if row.get("cut_off"):
        flags.append("cut off at the max length")
    if row.get("unlike_training"):
        flags.append(f"unlike the training data: {row['unlike_training']}")
    shown = f" [{'; '.join(flags)}]" if flags else ""
    answer = f"{row['predicted']} ({row['confidence']:.2f})" if "confidence" in row else f"{row['predicted']:.4g}"
    return f"{answer}{shown}: {row[kind]}"


def _texts_to_predict(
    args: argparse.Namespace,
) -> tuple[list[str], list[str] | None, dict[str, list[str]] | None, Path | None]:
    """The texts, their reading problems and the file's other columns (both None for --text) and the file
    they came from."""
    from core.data.text import read_texts

    if args.text and args.inputs:
        raise GlassboxError("give either a CSV of texts or --text, not both")
    if args.text:
        return list(args.text), None, None, None
    if len(args.inputs) != 1:
        raise GlassboxError("give one CSV or TSV of texts, or --text \"...\"")
    source = Path(args.inputs[0])
    read = read_texts(source, args.text_column)
    return read.texts, read.problems, read.others, source


def _progress_printer(label: str) -> Callable[[float], None]:
    """A method's progress on stderr in 10% steps (occlusion can take a while on large images)."""
    shown = [-1]

    def show(fraction: float) -> None:
        tenth = int(fraction * 10)
        if tenth > shown[0]:
            shown[0] = tenth
            print(f"{label}: {tenth * 10}%", file=sys.stderr, end="\n" if tenth == 10 else "\r", flush=True)

    return show


# parser ---------------------------------------------------------------------------------------------
def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Glassbox, headless.")
    commands = parser.add_subparsers(parser_class=_Parser)

    ds = commands.add_parser("datasets", help="add, list, delete datasets").add_subparsers(parser_class=_Parser)
    add = ds.add_parser("add", help="validate and store a dataset")
    add.add_argument("path")
    add.add_argument("--name")
    add.add_argument("--modality", help="what its items are: images, text, tables or series (default: detected)")
    _column_options(add)
    add.add_argument("--drop-bad", action="store_true", help="leave out files that cannot be used")
    _json(add).set_defaults(handler=_datasets_add)
    _json(ds.add_parser("list")).set_defaults(handler=_datasets_list)
    delete = ds.add_parser("delete")
    delete.add_argument("dataset")
    _json(delete).set_defaults(handler=_datasets_delete)

    bb = commands.add_parser("backbones", help="list backbones").add_subparsers(parser_class=_Parser)
    bl = bb.add_parser("list")
    bl.add_argument("--modality", help="images, text, tables or series (default: all)")
    _json(bl).set_defaults(handler=_backbones_list)

    train = commands.add_parser("train", help="train a model (waits unless --detach)")
    train.add_argument("--data", help="a dataset file or folder (validated and added), or a dataset id")
    train.add_argument("--config", help="a run's config.json, to reproduce it")
    train.add_argument("--preset")
    train.add_argument("--backbone")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--image-size", type=int)
    train.add_argument("--max-length", type=int, help="text: tokens read per text (longer ones are cut)")
    train.add_argument("--modality", help="for --data PATH: images, text, tables or series (default: detected)")
    _column_options(train)
    train.add_argument("--mode", choices=MODES)
    train.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    train.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"))
    train.add_argument("--early-stopping-patience", type=int, metavar="EPOCHS",
                       help="stop after this many epochs without a better validation score (accuracy, loss "
                            "breaking ties; the loss for values) (0: never)")
    train.add_argument("--seed", type=int)
    train.add_argument("--class-weights", choices=CLASS_WEIGHTS,
                       help="balanced: every class counts as much in the loss, however few its items (default: none)")
    train.add_argument("--weights", help="auto (default), none (from scratch) or a weights file")
    train.add_argument("--drop-bad", action="store_true")
    train.add_argument("--detach", action="store_true", help="return at once; the run goes on in the background")
    train.add_argument("--verbose", action="store_true", help="echo progress to stderr even with --json")
    _json(train).set_defaults(handler=_train)

    sr = commands.add_parser("search", help="search settings: several trial runs, pruned when behind (Optuna)")
    sr.add_argument("--data", help="a dataset file or folder (validated and added), or a dataset id")
    sr.add_argument("--config", help="a run's config.json: the base settings every trial starts from")
    sr.add_argument("--spec", help="a saved search.json to run (what the studio starts in the background)")
    sr.add_argument("--trials", type=int, default=8, help="number of trial runs (default: 8)")
    sr.add_argument("--parallel", type=int, default=1, help="trials that train at once (default: 1)")
    sr.add_argument("--timeout", type=float, metavar="SECONDS", help="time budget: no trial starts after it")
    sr.add_argument("--param", action="append", metavar="NAME=LOW:HIGH[:log] | NAME=a,b,c",
                    help="a setting to search, repeatable (e.g. lr=1e-4:1e-1:log, batch_size=16,32,64, "
                         "mode=head,full); default: lr and weight_decay, log ranges")
    sr.add_argument("--preset")
    sr.add_argument("--backbone")
    sr.add_argument("--epochs", type=int)
    sr.add_argument("--batch-size", type=int)
    sr.add_argument("--lr", type=float)
    sr.add_argument("--mode", choices=MODES)
    sr.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    sr.add_argument("--seed", type=int)
    sr.add_argument("--early-stopping-patience", type=int, metavar="EPOCHS")
    sr.add_argument("--modality", help="for --data PATH: images, text, tables or series (default: detected)")
    _column_options(sr)
    sr.add_argument("--drop-bad", action="store_true")
    sr.set_defaults(image_size=None, max_length=None, weights=None, precision=None, class_weights=None)
    _json(sr).set_defaults(handler=_search)

    rn = commands.add_parser("runs", help="list, show, cancel, resume runs").add_subparsers(parser_class=_Parser)
    _json(rn.add_parser("list")).set_defaults(handler=_runs_list)
    for name, handler in (("show", _runs_show), ("cancel", _runs_cancel)):
        sub = rn.add_parser(name)
        sub.add_argument("run_id")
        _json(sub).set_defaults(handler=handler)
    resume = rn.add_parser("resume")
    resume.add_argument("run_id")
    resume.add_argument("--wait", action="store_true")
    resume.add_argument("--verbose", action="store_true")
    _json(resume).set_defaults(handler=_runs_resume)
    compare = rn.add_parser("compare", help="runs side by side: figures, differing settings, the best run (*)")
    compare.add_argument("run_ids", nargs="+", metavar="RUN")
    _json(compare).set_defaults(handler=_runs_compare)
    logs = rn.add_parser("logs")
    logs.add_argument("run_id")
    logs.add_argument("--tail", type=int, default=200)
    logs.set_defaults(handler=_runs_logs)

    ex = commands.add_parser("explain",
                             help="explain a finished run's prediction on one image, text, table row or series")
    ex.add_argument("run_id")
    ex.add_argument("--input", help="the image to explain (image runs)")
    ex.add_argument("--text", help="the text to explain (text runs)")
    ex.add_argument("--series", help="series runs: a file of series (the --index-th is explained), or for a "
                                     "forecast the history (default: the training series)")
    ex.add_argument("--index", type=int, help="series runs: which series of --series to explain (default: 0)")
    ex.add_argument("--sheet", help="Excel: the sheet of --series")
    ex.add_argument("--row", help='the row to explain (table runs), a JSON object: \'{"age": 41, "plan": "pro"}\'')
    ex.add_argument("--top-k", type=int, help="text: words deleted by the faithfulness check (default: a tenth); "
                                              "tables: columns set to their baseline (default: 3)")
    ex.add_argument("--method", help="images: saliency, ig, gradcam (default), occlusion or guided_gradcam; "
                                     "text: ig (default) or occlusion; tables: ig (default), ablation or shapley")
    ex.add_argument("--target", help="class to explain, by name or index (default: the predicted one)")
    ex.add_argument("--out", help="overlay PNG to write (default: runs/<id>/explanations/<image>-<method>.png)")
    ex.add_argument("--steps", type=int, default=32, help="integrated gradients: steps")
    ex.add_argument("--baseline", default="black", help="integrated gradients: black, blurred or noise")
    ex.add_argument("--smoothgrad", action="store_true", help="integrated gradients: average over noisy copies")
    ex.add_argument("--window", type=int, help="occlusion: square side in pixels (default: an eighth of the image)")
    ex.add_argument("--stride", type=int, help="occlusion: step in pixels (default: half the window)")
    ex.add_argument("--sensitivity", type=int, default=0, metavar="N",
                    help="also measure sensitivity_max, re-running the method N times (slow for ig, occlusion)")
    _json(ex).set_defaults(handler=_explain)

    pr = commands.add_parser("predict", help="a finished run's predictions on new images, texts, rows or series "
                                             "(or a forecast), as a CSV")
    pr.add_argument("run_id", nargs="?", help="the run (none with --bundle)")
    pr.add_argument("--bundle", metavar="FILE.zip",
                    help="predict with an exported bundle instead of a run of this workspace")
    pr.add_argument("inputs", nargs="*",
                    help="text runs: one CSV, TSV or .txt; image runs: image files, folders or zips; "
                         "table runs: one CSV, TSV, Excel or Parquet file; series runs: a file of series, or "
                         "for a forecast the history (default: the training series' end)")
    pr.add_argument("--text", action="append", help="text runs: a text to classify (repeatable)")
    pr.add_argument("--text-column", help="the CSV's column holding the texts (default: suggested)")
    pr.add_argument("--sheet", help="tables, series: the Excel sheet holding the rows (default: found)")
    pr.add_argument("--future", help="forecasts: a file of the covariates over the horizon (time and covariates)")
    pr.add_argument("--out", help="CSV to write (default: runs/<id>/predictions/<input>.csv; none for --text)")
    _json(pr).set_defaults(handler=_predict)

    us = commands.add_parser("users", help="logins for a shared studio").add_subparsers(parser_class=_Parser)
    hashing = us.add_parser("hash-password", help="read a password (prompted, or one line on stdin) and print the "
                                                  "hash to set as a user's password in .streamlit/secrets.toml")
    hashing.set_defaults(handler=_users_hash_password)

    exp = commands.add_parser("export", help="a finished run as one zip that runs elsewhere: ONNX, torch.export, "
                                             "safetensors, preprocessing, a model card and a torch-free predict.py")
    exp.add_argument("run_id")
    exp.add_argument("--out", metavar="FILE.zip", help="where to write it (default: runs/<id>/export/<id>.zip)")
    exp.add_argument("--quantize", choices=("int8", "fp16"),
                     help="a compressed model in place of the fp32 one, with its accuracy and latency beside them")
    _json(exp).set_defaults(handler=_export)
    return parser


def _column_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="tables: the column to predict (default: one named like a target, else "
                                         "the last)")
    parser.add_argument("--task", choices=tasks.names(),
                        help="tables, series: what to predict (default: inferred from the target column)")
    parser.add_argument("--sheet", help="Excel: the sheet holding the table (default: found)")
    parser.add_argument("--role", action="append", metavar="COLUMN=ROLE",
                        help="tables: a column's role (numeric, categorical, boolean, datetime, text, identifier, "
                             "constant), repeatable")
    parser.add_argument("--drop-columns", metavar="A,B", help="tables: columns to leave out (e.g. leaks)")
    parser.add_argument("--time", metavar="COL", help="series: the column of time stamps (or steps, in long form)")
    parser.add_argument("--series-id", metavar="COL", help="series in long form: the column naming each series")
    parser.add_argument("--channel", metavar="COL", help="series in long form: the column naming each channel")
    parser.add_argument("--value", metavar="COL", help="series in long form: the column of values")
    parser.add_argument("--horizon", type=_positive, metavar="H",
                        help="forecasting: steps to forecast (default: a season)")
    parser.add_argument("--context", type=_positive, metavar="L", help="forecasting: past steps each forecast reads")
    parser.add_argument("--season", type=_positive, metavar="STEPS",
                        help="forecasting: steps in one season (default: from the frequency, e.g. 48 half-hours)")
    parser.add_argument("--text-column", help="text data: the column holding the texts (default: suggested)")
    parser.add_argument("--label-column", help="text data: the column holding the labels (default: suggested)")
    parser.add_argument("--merge-similar-labels", action="store_true",
                        help="make labels that differ only by case, spaces or accents one class")


def _positive(text: str) -> int:
    """A whole number of steps, at least 1 (argparse's type: its error names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a number of steps (at least 1)")
    return value


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser
