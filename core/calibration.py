"""Whether a classifier's probabilities can be taken at their word, and temperature scaling to make them so.

A model that says 90% should be right nine times in ten. Modern networks are often over-confident: their
mistakes come with probabilities near 1 (Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural
Networks", ICML 2017). The expected calibration error (ECE) measures the gap, and temperature scaling, one
scalar T dividing the logits, fitted on validation by minimising the negative log-likelihood, closes most of
it without changing any prediction (argmax(logits / T) = argmax(logits) for T > 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expected_calibration_error", "fit_temperature", "reliability_bins", "softmax"]

BINS = 15  # Guo et al.'s choice: equal-width confidence bins over [0, 1]
_T_RANGE = (0.05, 20.0)  # beyond these the fit is chasing a degenerate validation set, not calibrating


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities [n, C] from logits [n, C] divided by `temperature` (> 0), computed in float64 with the
    row maximum subtracted so that large logits do not overflow. Raises ValueError for a temperature <= 0."""
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, not {temperature}")
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict[str, Any]]:
    """The reliability diagram's bars (Guo et al., 2017, sec. 2): items grouped by confidence (the top class's
    probability) into `bins` equal-width bins over [0, 1] (the first bin includes 0, each bin its upper edge), and
    per bin `lower`, `upper`, `count`, the mean `confidence` and the `accuracy` (share of items whose top class is
    their label); an empty bin has count 0 and None for both. `probs` [n, C], `labels` [n] class indices. Raises
    ValueError when the shapes disagree or `bins` < 1."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    if p.ndim != 2 or y.shape != (len(p),):
        raise ValueError(f"probs {p.shape} and labels {y.shape} must be [n, C] and [n]")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    confidence = p.max(axis=1) if len(p) else np.zeros(0)
    correct = (p.argmax(axis=1) == y) if len(p) else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right-closed bins (a, b], the first one [0, b]: a confidence of exactly 1 lands in the last bin
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    found = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        found.append({"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": count,
                      "confidence": float(confidence[inside].mean()) if count else None,
                      "accuracy": float(correct[inside].mean()) if count else None})
    return found


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE (0-1): the mean over items of |accuracy - confidence| of their confidence bin, i.e. the bins' gaps
    weighted by their share of the items (Naeini, Cooper and Hauskrecht, AAAI 2015; Guo et al., 2017, eq. 3).
    0 for a perfectly calibrated model. Raises ValueError for no item or shapes that disagree."""
    found = reliability_bins(probs, labels, bins)
    total = sum(b["count"] for b in found)
    if not total:
        raise ValueError("no item to measure the calibration error on")
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in found if b["count"]) / total)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on `labels` (Guo et al.,
    2017, sec. 4.2), by L-BFGS (PyTorch's `torch.optim.LBFGS`, strong-Wolfe line search) on log T, so T stays
    positive; clipped to [0.05, 20]. `logits` [n, C] (raw model outputs), `labels` [n] class indices. T = 1 (nothing
    to fit) with fewer than two items, a single class present, or no mistake at all: then the likelihood has no
    minimum and would push T to 0, making every probability 1. Raises ValueError when shapes disagree."""
    import torch

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"logits {tuple(z.shape)} and labels {tuple(y.shape)} must be [n, C] and [n]")
    if len(y) < 2 or len(torch.unique(y)) < 2:
        return 1.0
    if bool((z.argmax(1) == y).all()):
        # without a single mistake the likelihood only grows as T shrinks to 0: the "fit" would declare every
        # answer certain, which a validation set this small cannot show; the probabilities stay as trained
        return 1.0
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")
    nll = torch.nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nll(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    found = float(log_t.detach().exp())
    if not np.isfinite(found):
        return 1.0
    return float(np.clip(found, *_T_RANGE))
