"""Device and precision are decided here and nowhere else: CUDA, then Apple MPS, then the CPU;
mixed precision on CUDA only unless a run asks for it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from core.errors import GlassboxError


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    amp_dtype: torch.dtype | None  # None = full precision

    @property
    def name(self) -> str:
        return self.device.type

    @property
    def needs_grad_scaler(self) -> bool:
        return self.amp_dtype is torch.float16

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.amp_dtype is None:
            yield
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype):
                yield

    def describe(self) -> str:
        label = self.device.type
        if self.device.type == "cuda":
            label += f" ({torch.cuda.get_device_name(self.device)})"
        precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]
        return f"{label}, {precision}"


def available() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names.insert(0, "cuda")
    if torch.backends.mps.is_available():
        names.insert(0 if "cuda" not in names else 1, "mps")
    return names


def select(requested: str = "auto", precision: str = "auto") -> DeviceChoice:
    """The device a run asks for ("auto": the first of `available()`) and its autocast dtype: "auto" is bf16
    on a CUDA GPU that computes it natively, else fp16 there (with a GradScaler, `needs_grad_scaler`), and
    full precision on the CPU and MPS; "fp32", "bf16", "fp16" as asked. Raises GlassboxError for a device
    that is not here or fp16 on the CPU."""
    name = available()[0] if requested == "auto" else requested
    if name not in available():
        raise GlassboxError(f"device {requested!r} is not available here (available: {', '.join(available())})")
    device = torch.device(name)
    return DeviceChoice(device, _amp_dtype(device, precision))


def _amp_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            raise GlassboxError("fp16 mixed precision needs a GPU; use bf16 or fp32 on the CPU")
        return torch.float16
    # auto: mixed precision where it pays off. On CPUs bf16 autocast was measured slower than fp32. bf16 only
    # where the GPU computes it natively (Ampere on): torch's default check also counts emulated bf16,
    # which runs slower than fp32 on a Volta or Turing card; fp16 there, with a GradScaler.
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return None
