"""Headless Glassbox: `python -m core datasets|backbones|train|runs ...`.

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

from core import datasets, runs
from core.config import MODES, TrainConfig
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
    except GlassboxError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
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
                          drop_bad=args.drop_bad)
    info = record.info
    for problem in info.get("problems", []):
        print(f"{problem['level']}: {problem['message']}", file=sys.stderr)
    _emit(args, {"dataset_id": record.id, "name": record.name, "modality": record.modality, **info},
          f"{record.id}  {record.name}: {info['num_items']} items, {len(info['classes'])} classes")
    return 0


def _datasets_list(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    rows = store.list_datasets()
    _emit(args, [{"dataset_id": d.id, "name": d.name, "modality": d.modality, "num_items": d.info["num_items"],
                  "classes": d.info["classes"]} for d in rows],
          "\n".join(f"{d.id}  {d.modality:8} {d.info['num_items']:6}  {d.name}" for d in rows) or "no datasets")
    return 0


def _datasets_delete(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    record = datasets.resolve(store, args.dataset)
    datasets.delete(ws, store, record.id)
    _emit(args, {"deleted": record.id}, f"deleted {record.id}")
    return 0


# backbones ------------------------------------------------------------------------------------------
def _backbones_list(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    from core import models

    rows = models.family(args.modality).catalog()
    _emit(args, [asdict(b) for b in rows],
          "\n".join(f"{b.name:28} {b.params_m or 0:7.1f} M  {b.input_size or '':>4}  weights: {b.weights}"
                    for b in rows))
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
        modality = store.get_dataset(config.dataset_id).modality
        config = config.updated(modality=modality)
        if args.preset:
            config = presets.apply(config, args.preset)
    overrides = {
        key: getattr(args, key)
        for key in ("backbone", "epochs", "batch_size", "lr", "image_size", "mode", "device", "seed", "weights",
                    "precision")
        if getattr(args, key) is not None
    }
    return config.updated(**overrides)


def _dataset_for(args: argparse.Namespace, ws: Workspace, store: Store) -> str:
    path = Path(args.data)
    if path.exists():
        record = datasets.add(ws, store, path, drop_bad=args.drop_bad)
        print(f"dataset {record.id}: {record.info['num_items']} items, {len(record.info['classes'])} classes",
              file=sys.stderr)
        return record.id
    return datasets.resolve(store, args.data).id


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
        time.sleep(0.5)
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
    run = runs.cancel(ws, store, args.run_id)
    _emit(args, run.summary(), f"{run.id} {run.status}")
    return 0


def _runs_resume(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    run = runs.resume(ws, store, args.run_id)
    if args.wait:
        return _follow(args, ws, store, run.id)
    _emit(args, run.summary(), f"{run.id} {run.status}")
    return 0


def _runs_logs(args: argparse.Namespace, ws: Workspace, store: Store) -> int:
    from core import jobs

    run = store.get_run(args.run_id)
    print(jobs.backend(run.backend, ws, store).logs(run, tail=args.tail))
    return 0


# parser ---------------------------------------------------------------------------------------------
def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Glassbox, headless.")
    commands = parser.add_subparsers(parser_class=_Parser)

    ds = commands.add_parser("datasets", help="add, list, delete datasets").add_subparsers(parser_class=_Parser)
    add = ds.add_parser("add", help="validate and store a dataset")
    add.add_argument("path")
    add.add_argument("--name")
    add.add_argument("--modality")
    add.add_argument("--drop-bad", action="store_true", help="leave out files that cannot be used")
    _json(add).set_defaults(handler=_datasets_add)
    _json(ds.add_parser("list")).set_defaults(handler=_datasets_list)
    delete = ds.add_parser("delete")
    delete.add_argument("dataset")
    _json(delete).set_defaults(handler=_datasets_delete)

    bb = commands.add_parser("backbones", help="list backbones").add_subparsers(parser_class=_Parser)
    bl = bb.add_parser("list")
    bl.add_argument("--modality", default="images")
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
    train.add_argument("--mode", choices=MODES)
    train.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    train.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"))
    train.add_argument("--seed", type=int)
    train.add_argument("--weights", help="auto (default), none (from scratch) or a weights file")
    train.add_argument("--drop-bad", action="store_true")
    train.add_argument("--detach", action="store_true", help="return at once; the run goes on in the background")
    train.add_argument("--verbose", action="store_true", help="echo progress to stderr even with --json")
    _json(train).set_defaults(handler=_train)

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
    logs = rn.add_parser("logs")
    logs.add_argument("run_id")
    logs.add_argument("--tail", type=int, default=200)
    logs.set_defaults(handler=_runs_logs)
    return parser


def _json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser
