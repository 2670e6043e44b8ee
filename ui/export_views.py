"""The Predict page's export: a finished run as one zip (`core.export.export_run`), optionally with a compressed
model, with the checks that say how far the exported model agrees with the run's own, and a download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ui.errors import user_errors
from ui.run_picker import Picked
from ui.shell import Studio

# what the user picks -> `export_run`'s quantize argument
CHOICES = {"Full precision (fp32)": None, "int8 (smaller, faster on CPUs)": "int8", "fp16 (half the size)": "fp16"}


def show(studio: Studio, picked: Picked) -> None:
    """Choose a precision, build the bundle (kept under the run's `export/` folder with its checks beside it, so it
    is built once) and download it; shows the ONNX parity, and for a compressed model its metric, latency and size
    before and after."""
    st.divider()
    st.subheader("Export")
    st.caption("One zip that runs without Glassbox: the model as ONNX (and, at full precision, torch.export and "
               "safetensors weights), its preprocessing, labels, a model card, and a `predict.py` that needs only "
               "onnxruntime, numpy and Pillow (and tokenizers for text).")
    label = st.radio("Model in the bundle", list(CHOICES), horizontal=True, key=f"export_kind-{picked.run.id}")
    quantize = CHOICES[label]
    out = bundle_path(studio, picked.run.id, quantize)
    checks = out.with_suffix(".json")
    if not (out.exists() and checks.exists()):
        if st.button("Build the bundle", key=f"export-{picked.run.id}-{quantize}", icon=":material/package_2:"):
            from core.export import export_run

            with user_errors("Cannot export this run: "), st.spinner("Exporting and checking the model..."):
                value = export_run(studio.ws, studio.store, picked.run.id, out, quantize)
                checks.write_text(json.dumps(value, default=str))
                st.rerun()
        return
    value = json.loads(checks.read_text())
    st.dataframe(figures(value), hide_index=True)
    st.download_button("Download the bundle", out.read_bytes(), file_name=out.name, mime="application/zip",
                       icon=":material/download:", key=f"download-{picked.run.id}-{quantize}")
    st.markdown("Elsewhere, unzip it and run:\n```bash\npip install -r requirements.txt\n"
                "python predict.py INPUT...\n```")


def bundle_path(studio: Studio, run_id: str, quantize: str | None) -> Path:
    """Where the run's bundle of that precision is kept: runs/<id>/export/<id>[-int8].zip, as the CLI writes it."""
    return studio.ws.run_dir(run_id) / "export" / f"{run_id}{f'-{quantize}' if quantize else ''}.zip"


def figures(value: dict[str, Any]) -> pd.DataFrame:
    """The export's checks as rows of (check, value) in words: the bundle's size, ONNX against PyTorch, and for a
    compressed model each metric, the latency and the model's size before and after."""
    rows = [("bundle size", f"{sum(value['files'].values()) / 1e6:.1f} MB"),
            ("largest difference, ONNX against PyTorch (raw outputs)", f"{value['onnx_max_abs_diff']:.2g}")]
    if "top1_agreement" in value:
        rows.append(("same top class, ONNX against PyTorch", f"{value['top1_agreement']:.1%}"))
    for key in sorted(k for k in value if k.endswith("_before") and k.startswith(("val_", "test_"))):
        name = key[: -len("_before")].replace("_", " ")
        rows.append((f"{name}: before / after", f"{value[key]:.4g} / {value[key[: -len('before')] + 'after']:.4g}"))
    if "latency_ms_before" in value:
        rows.append(("latency per item, CPU: before / after",
                     f"{value['latency_ms_before']:.2f} ms / {value['latency_ms_after']:.2f} ms"))
        rows.append(("model size: before / after",
                     f"{value['size_before'] / 1e6:.1f} MB / {value['size_after'] / 1e6:.1f} MB"))
    return pd.DataFrame(rows, columns=["check", "value"])
