"""Class weights for the loss (`TrainConfig.class_weights`), from the training split's class counts.

"balanced" is scikit-learn's `compute_class_weight("balanced")`: class c weighs n / (k * n_c), so every
class contributes as much to the loss as the others however few items it has; a model on imbalanced data
then stops profiting from always answering the largest class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight


def class_weights(choice: str, train_labels: Sequence[int], num_classes: int,
                  device: torch.device | str = "cpu") -> torch.Tensor | None:
    """The `weight` of `nn.CrossEntropyLoss` (float32, shape (num_classes,), on `device`) for `choice`
    ("none": None, every item counts once; "balanced": as above). A class with no training item gets
    weight 1: it never is a training target, and on validation it counts as it would unweighted."""
    if choice == "none":
        return None
    labels = np.asarray(train_labels, dtype=int)
    present = np.unique(labels)
    weights = np.ones(num_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.tensor(weights, dtype=torch.float32, device=device)
