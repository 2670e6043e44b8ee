import json
from pathlib import Path

import pytest

from core.config import TrainConfig
from core.errors import GlassboxError
from core.training import presets


def test_round_trip_through_json(tmp_path: Path) -> None:
    config = TrainConfig(dataset_id="ds-1", epochs=7, lr=0.02, mode="partial")
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert TrainConfig.load(path) == config


def test_unknown_keys_and_bad_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GlassboxError, match="unknown config keys: colour"):
        TrainConfig.from_dict({"dataset_id": "d", "colour": "red"})
    with pytest.raises(GlassboxError, match="mode must be"):
        TrainConfig(dataset_id="d", mode="most").validate()
    with pytest.raises(GlassboxError, match="epochs"):
        TrainConfig(dataset_id="d").updated(epochs=0)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(GlassboxError, match="cannot read config"):
        TrainConfig.load(broken)
    broken.write_text(json.dumps([1, 2]))
    with pytest.raises(GlassboxError, match="not a JSON object"):
        TrainConfig.load(broken)


def test_presets_apply_their_values() -> None:
    base = TrainConfig(dataset_id="d")
    quick = presets.apply(base, "quick")
    assert (quick.mode, quick.preset, quick.image_size) == ("head", "quick", 128)
    assert presets.apply(base, "best").mode == "full"
    with pytest.raises(GlassboxError, match="unknown preset"):
        presets.apply(base, "fastest")
