"""The majority baseline: always answer the class with the most training items. Its accuracy is that
class's share of the validation items, the figure a model that learned nothing reaches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NAME = "majority"


def largest_class(train_labels: Sequence[int]) -> int:
    """The training split's most frequent class index; the lowest index on a tie (`np.argmax`)."""
    return int(np.bincount(np.asarray(train_labels, dtype=int)).argmax())
