"""The majority baseline: always answer the class with the most training items. Its accuracy is that
class's share of the validation items, the figure a model that learned nothing reaches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.baselines import Context

NAME = "majority"
TITLE = "always the largest class"


def largest_class(train_labels: Sequence[int]) -> int:
    """The training split's most frequent class index; the lowest index on a tie (`np.argmax`)."""
    return int(np.bincount(np.asarray(train_labels, dtype=int)).argmax())


def predict(context: Context) -> np.ndarray:
    """Probabilities [n_val, classes]: all on the training split's largest class."""
    answers = np.zeros((len(context.split.val), len(context.state["classes"])))
    answers[:, largest_class(context.targets[context.split.train])] = 1.0
    return answers
