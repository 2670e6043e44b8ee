"""The table encoder (core/data/table_encoding.py): statistics from the training rows only, every cell encoded at
prediction (gaps, unseen levels, values out of range), the JSON round trip, datetime parts, and the shared cases'
columns (zip codes with leading zeros, constant columns with gaps, an unseen level in new rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import QuantileTransformer

from core.data.table_encoding import MAX_QUANTILES, TableEncoder
from core.errors import GlassboxError

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases"
needs_cases = pytest.mark.skipif(not (CASES / "tables").is_dir(), reason="../shared/cases is not beside this checkout")


def _columns(roles: dict[str, str]) -> list[dict[str, object]]:
    return [{"name": name, "role": role, "dropped": False} for name, role in roles.items()]


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3.0 + shift, 1.0, n)
    price[::7] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]).astype(object)
    plan[::5] = None
    return pd.DataFrame({"price": price, "plan": plan, "member": rng.integers(0, 2, n).astype(np.float64)})


ROLES = {"price": "numeric", "plan": "categorical", "member": "boolean"}


def test_statistics_are_the_training_rows_not_all_rows() -> None:
    train, valid = _frame(300, 0), _frame(200, 1, shift=2.0)
    encoder = TableEncoder.fit(train, _columns(ROLES) + [{"name": "churn", "role": "target"}])
    price = encoder.numeric[encoder.feature_names.index("price")]
    assert price.fill == pytest.approx(float(np.nanmedian(train["price"])))
    assert price.fill != pytest.approx(float(np.nanmedian(pd.concat([train, valid])["price"])))
    assert len(price.quantiles) == min(MAX_QUANTILES, len(train))
    assert price.quantiles[0] == pytest.approx(np.nanmin(train["price"]))
    assert price.quantiles[-1] == pytest.approx(np.nanmax(train["price"]))
    # the training median encodes as the middle of the normal; the shifted rows mostly lie above it
    assert encoder.baseline()["numeric"][0, encoder.feature_names.index("price")] == pytest.approx(0.0, abs=0.02)
    assert np.median(encoder.transform(valid)["numeric"][:, 0]) > 1.0
    assert encoder.levels("plan") == ["basic", "plus", "pro"]  # most frequent first
    assert encoder.defaults()["price"] == price.fill


def test_scaling_matches_scikit_learns_quantile_transformer_on_continuous_values() -> None:
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": rng.exponential(2.0, 500)})
    new = pd.DataFrame({"x": np.concatenate([rng.exponential(2.0, 50), [-5.0, 0.0, 1e6]])})
    encoder = TableEncoder.fit(train, _columns({"x": "numeric"}))
    reference = QuantileTransformer(n_quantiles=500, output_distribution="normal").fit(train[["x"]])
    for frame in (train, new):
        np.testing.assert_allclose(encoder.transform(frame)["numeric"][:, 0], reference.transform(frame[["x"]])[:, 0],
                                   atol=1e-5)
    # beyond the training range the score is clipped, not extrapolated
    assert encoder.transform(new)["numeric"][-1, 0] == pytest.approx(5.1993, abs=1e-3)


def test_a_common_value_is_not_sent_to_the_extreme_and_a_constant_column_encodes_as_zero() -> None:
    counts = pd.DataFrame({"visits": [0.0] * 80 + list(range(1, 21)), "site": [7.0] * 100})
    encoder = TableEncoder.fit(counts, _columns({"visits": "numeric", "site": "numeric"}))
    encoded = encoder.transform(pd.DataFrame({"visits": [0.0, 20.0], "site": [7.0, 9.0]}))["numeric"]
    assert -0.5 < encoded[0, 0] < 0.5  # the zeros' middle rank is 0.4: a typical value, not an outlier at -5.2
    assert encoded[1, 0] > 2.0
    assert encoded[:, 1].tolist() == [0.0, 0.0]
    assert encoder.feature_names == ["visits", "site"]  # no indicator: no gaps in training


def test_gaps_at_prediction_take_the_median_and_an_indicator_when_training_had_gaps() -> None:
    train = pd.DataFrame({"price": [1.0, 2.0, np.nan, 4.0, 9.0], "age": [30.0, 40.0, 50.0, 60.0, 70.0],
                          "member": [1.0, 0.0, 1.0, np.nan, 1.0]})
    encoder = TableEncoder.fit(train, _columns({"price": "numeric", "age": "numeric", "member": "boolean"}))
    assert encoder.feature_names == ["price", "price.missing", "age", "member", "member.missing"]
    assert encoder.feature_columns == ["price", "price", "age", "member", "member"]
    gaps = encoder.transform(pd.DataFrame({"price": [np.nan], "age": [np.nan], "member": [np.nan]}))["numeric"][0]
    medians = encoder.transform(pd.DataFrame({"price": [3.0], "age": [50.0], "member": [1.0]}))["numeric"][0]
    assert gaps.tolist() == [medians[0], 1.0, medians[2], 1.0, 1.0]
    assert medians[[1, 4]].tolist() == [0.0, 0.0]
    assert gaps[3] == 1.0  # a boolean stays 0/1: its median (yes) fills the gap
    assert encoder.baseline()["numeric"][0].tolist() == pytest.approx(medians.tolist())


def test_levels_unknown_missing_and_rare() -> None:
    train = pd.DataFrame({"plan": ["pro", "basic", "basic", None, "pro", "basic", "trial"]})
    encoder = TableEncoder.fit(train, _columns({"plan": "categorical"}))
    assert encoder.levels("plan") == ["basic", "pro"]  # "trial", seen once, shares the unknown index
    assert encoder.categorical[0].rare == 1
    assert encoder.cardinalities == [4] and encoder.category_columns == ["plan"]
    new = pd.DataFrame({"plan": pd.Series(["basic", "pro", None, "enterprise", "trial"], dtype="string")})
    assert encoder.transform(new)["categorical"][:, 0].tolist() == [2, 3, 1, 0, 0]
    assert encoder.baseline()["categorical"].tolist() == [[2]]  # the most frequent level
    assert encoder.defaults()["plan"] == "basic"


def test_datetime_parts() -> None:
    dates = pd.to_datetime(pd.Series(["2023-01-15", "2023-06-30", None, "2024-02-29", "2024-12-01", "2022-03-08"]))
    encoder = TableEncoder.fit(pd.DataFrame({"signup_date": dates}), _columns({"signup_date": "datetime"}))
    parts = ["year", "month", "day_of_week", "day_of_year"]
    assert encoder.feature_names == [f"signup_date.{p}" for p in parts] + ["signup_date.missing"]
    assert set(encoder.feature_columns) == {"signup_date"}
    encoded = encoder.transform(pd.DataFrame({"signup_date": pd.to_datetime(
        pd.Series(["2023-03-06", "2023-09-06", "2025-03-06"]))}))["numeric"]  # a Monday, a Wednesday; later year
    assert encoded[0, 1] < encoded[1, 1]  # March before September
    assert encoded[0, 2] < encoded[1, 2]  # Monday before Wednesday
    assert encoded[0, 0] < encoded[2, 0]  # 2023 before 2025
    assert encoded[:, 4].tolist() == [0.0, 0.0, 0.0]
    assert encoder.defaults()["signup_date"].startswith("2023-")
    timed = pd.to_datetime(pd.Series(["2024-01-01 08:30", "2024-01-02 17:00", "2024-01-03 00:00"]))
    with_hours = TableEncoder.fit(pd.DataFrame({"seen": timed}), _columns({"seen": "datetime"}))
    assert "seen.hour" in with_hours.feature_names and "seen.missing" not in with_hours.feature_names
    # a form sends a date as ISO text
    one = with_hours.transform({"seen": "2024-01-02 17:00"})["numeric"]
    assert one.tolist() == with_hours.transform(pd.DataFrame({"seen": timed[1:2]}))["numeric"].tolist()


def test_json_round_trip_gives_identical_transforms() -> None:
    train = _frame(200, 0).assign(when=pd.date_range("2024-01-01", periods=200, freq="7h"))
    roles = {**ROLES, "when": "datetime"}
    encoder = TableEncoder.fit(train, _columns(roles))
    text = json.dumps(encoder.to_dict(), allow_nan=False)  # plain JSON: no NaN, nothing pickled
    again = TableEncoder.from_dict(json.loads(text) | {"outputs": 1})
    assert again == encoder
    new = _frame(50, 9, shift=1.0).assign(when=pd.date_range("2023-06-01", periods=50, freq="13h"))
    new.loc[3, "plan"] = "unheard-of"
    for key in ("numeric", "categorical"):
        assert np.array_equal(again.transform(new)[key], encoder.transform(new)[key])
        assert np.array_equal(again.baseline()[key], encoder.baseline()[key])
    assert encoder.transform(new)["numeric"].dtype == np.float32
    assert encoder.transform(new)["categorical"].dtype == np.int64


def test_one_row_as_a_mapping_encodes_like_the_frame() -> None:
    train = _frame(100, 0)
    encoder = TableEncoder.fit(train, _columns(ROLES))
    row = {"price": 21.5, "plan": "pro", "member": 1.0}
    single = encoder.transform(row)
    from_frame = encoder.transform(pd.DataFrame([row]))
    assert single["numeric"].shape == (1, 3) and single["categorical"].shape == (1, 1)
    assert np.array_equal(single["numeric"], from_frame["numeric"])


def test_the_target_is_not_the_encoders_and_an_earlier_runs_target_key_is_ignored() -> None:
    encoder = TableEncoder.fit(_frame(50, 0), _columns(ROLES))
    saved = encoder.to_dict()
    assert set(saved) == {"format", "sources", "numeric", "categorical"}  # the task state keeps the target
    # runs saved before the task registry kept the target's scale here too: they still load, to the same encoder
    earlier = saved | {"target": {"task": "regression", "mean": 20.0, "std": 8.2}}
    assert TableEncoder.from_dict(earlier) == encoder


def test_plain_errors() -> None:
    encoder = TableEncoder.fit(_frame(30, 0), _columns(ROLES) + [{"name": "notes", "role": "text", "dropped": True}])
    assert encoder.columns == ["price", "plan", "member"]
    with pytest.raises(GlassboxError, match="no column 'plan'"):
        encoder.transform(pd.DataFrame({"price": [1.0], "member": [0.0]}))
    with pytest.raises(GlassboxError, match="no column is left"):
        TableEncoder.fit(_frame(30, 0), [{"name": "price", "role": "numeric", "dropped": True}])
    with pytest.raises(GlassboxError, match="another version"):
        TableEncoder.from_dict({"numeric": []})
    with pytest.raises(GlassboxError, match="damaged"):
        TableEncoder.from_dict({**encoder.to_dict(), "numeric": [{"name": "x"}]})


# ---- the shared cases ---------------------------------------------------------------------------------


@needs_cases
def test_zip_codes_keep_their_leading_zeros_and_an_unseen_zip_is_encoded() -> None:
    folder = CASES / "tables" / "zip-leading-zeros"
    train = pd.read_csv(folder / "customers.csv", dtype=str, keep_default_na=False)
    typed = pd.DataFrame({"zip": train["zip"], "store_code": train["store_code"],
                          "visits": pd.to_numeric(train["visits"])})
    encoder = TableEncoder.fit(typed, _columns({"zip": "categorical", "store_code": "categorical",
                                                "visits": "numeric"}))
    assert "007" in encoder.levels("store_code") and "7" not in encoder.levels("store_code")
    assert all(len(level) == 5 for level in encoder.levels("zip"))  # "02139", never 2139
    new = pd.read_csv(folder / "new_customers.csv", dtype=str, keep_default_na=False)
    encoded = encoder.transform(pd.DataFrame({"zip": new["zip"], "store_code": new["store_code"],
                                              "visits": pd.to_numeric(new["visits"])}))
    unseen = [z not in encoder.levels("zip") for z in new["zip"]]
    assert any(unseen)
    assert encoded["categorical"][:, 0][unseen].tolist() == [0] * sum(unseen)
    assert np.isfinite(encoded["numeric"]).all()


@needs_cases
def test_constant_and_gappy_columns_and_an_unseen_level_in_new_readings() -> None:
    folder = CASES / "tables" / "constant-empty-cols"
    raw = pd.read_csv(folder / "sensors.csv", dtype=str)
    roles = {"temp_c": "numeric", "vibration_mm_s": "numeric", "site": "categorical", "firmware": "categorical",
             "calib_offset": "numeric"}

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({name: pd.to_numeric(frame[name]) if role == "numeric" else frame[name].astype(object)
                             for name, role in roles.items()})

    encoder = TableEncoder.fit(typed(raw), _columns(roles))
    assert "calib_offset.missing" in encoder.feature_names  # one value plus gaps: only its gaps carry anything
    new = pd.read_csv(folder / "new_readings.csv", dtype=str)
    encoded = encoder.transform(typed(new))
    calib = encoder.feature_names.index("calib_offset")
    assert encoded["numeric"][:, calib].tolist() == [0.0] * len(new)
    assert encoded["numeric"][:, calib + 1].tolist() == new["calib_offset"].isna().astype(float).tolist()
    levels = encoder.levels("firmware")
    assert [code == 0 for code in encoded["categorical"][:, 1]] == [v not in levels for v in new["firmware"]]
    assert np.isfinite(encoded["numeric"]).all()
