"""Column roles, conversions and the task of a table (core/data/columns.py), on the real-world tables of
../shared/cases/tables and on messy columns made here: ids, dates in three forms, yes/no spelled many ways,
numbers with thousands separators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.data import columns
from core.data.reading import read_table
from core.errors import GlassboxError

CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases"
TABLES = CASES / "tables"
needs_cases = pytest.mark.skipif(not TABLES.is_dir(), reason="../shared/cases is not beside this checkout")


def _frame(path: Path) -> pd.DataFrame:
    """A file as the table reader gives it: text cells, None when empty."""
    table = read_table(path)
    frame = pd.DataFrame([[c.strip() for c in cells] for _, cells in table.rows], columns=table.columns, dtype=object)
    return frame.where(frame != "", None)


def _by_name(described: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in described}


def _roles(described: list[dict[str, Any]]) -> dict[str, str]:
    return {c["name"]: c["role"] for c in described}


# ---- the shared cases ---------------------------------------------------------------------------------


@needs_cases
def test_money_and_percent_are_numbers_with_one_stated_convention_and_new_rows_read_alike() -> None:
    frame = _frame(TABLES / "currency-percent" / "listings.csv")
    described = columns.infer_columns(frame, "monthly_revenue")
    assert _roles(described) == {"listing_id": "identifier", "bedrooms": "numeric", "rent": "numeric",
                                 "deposit": "numeric", "cleaning_fee": "numeric", "occupancy": "numeric",
                                 "monthly_revenue": "target"}
    col = _by_name(described)
    assert col["rent"]["conversion"] == {"kind": "currency", "symbol": "$", "thousands": ",", "decimal": "."}
    assert col["rent"]["reason"] == "money in $ ('$2,450.50' is 2450.5; ',' separates thousands)"
    assert (col["rent"]["min"], col["rent"]["max"]) == (650.0, 3200.0)
    assert col["deposit"]["conversion"] == {"kind": "percent", "unit": "percent points", "thousands": "",
                                            "decimal": "."}
    assert "percent points" in col["deposit"]["reason"]
    assert (col["deposit"]["min"], col["deposit"]["max"], col["deposit"]["distinct"]) == (5.0, 20.0, 5)
    assert col["listing_id"]["dropped"] and not col["rent"]["dropped"]
    assert col["monthly_revenue"]["conversion"]["kind"] == "currency"

    assert columns.infer_task(frame["monthly_revenue"], col["monthly_revenue"]) == (
        "regression", "monthly_revenue is money, a quantity, not classes")
    values, missing = columns.target_values(frame["monthly_revenue"], "regression", col["monthly_revenue"])
    assert values[:3] == [2798.43, 1391.87, 743.61] and missing == []

    typed, problems = columns.typed(frame, described)
    assert list(typed.columns) == ["bedrooms", "rent", "deposit", "cleaning_fee", "occupancy"]
    assert typed.iloc[0].tolist() == [2.0, 3200.0, 5.0, 45.0, 84.0]
    assert typed.loc[15, "deposit"] == 7.5  # "7.5 %"
    assert problems == [] and set(typed.dtypes) == {np.dtype("float64")}

    new, problems = columns.typed(_frame(TABLES / "currency-percent" / "new_listings.csv"), described)
    assert new["rent"].tolist() == [1050.0, 1450.0, 2450.5]  # "1450" written without "$"
    assert new["cleaning_fee"].tolist() == [25.0, 0.0, 45.0]
    assert new["occupancy"].tolist() == [80.0, 91.0, 66.0]  # "91 %"
    assert new["deposit"].tolist() == [10.0, 7.5, 15.0]
    assert problems == []


@needs_cases
def test_yes_no_spelled_many_ways_is_one_flag_and_yes_and_y_read_alike() -> None:
    frame = _frame(TABLES / "mixed-booleans" / "members.csv")
    described = columns.infer_columns(frame, "renewed")
    assert _roles(described) == {"member_id": "identifier", "age": "numeric", "is_member": "boolean",
                                 "has_card": "boolean", "newsletter": "boolean", "region": "categorical",
                                 "renewed": "target"}
    col = _by_name(described)
    member = col["is_member"]
    assert set(member["conversion"]["true"]) == {"Yes", "YES", "TRUE", "True", "true", "Y", "y", "yes", "1"}
    assert set(member["conversion"]["false"]) == {"No", "NO", "no", "N", "n", "False", "false", "FALSE", "0"}
    assert (member["distinct"], member["n_levels"], member["levels"]) == (2, 2, ["No", "Yes"])
    assert col["newsletter"]["conversion"] == {"kind": "boolean", "true": ["true"], "false": ["false"]}
    assert col["has_card"]["conversion"] == {"kind": "boolean", "true": ["1"], "false": ["0"]}

    typed, problems = columns.typed(frame, described)
    assert problems == []
    assert typed["is_member"].iloc[:8].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0]  # No TRUE ... NO y
    assert typed["newsletter"].sum() == 3.0 and typed["newsletter"].iloc[-3:].tolist() == [1.0, 1.0, 1.0]

    new = _frame(TABLES / "mixed-booleans" / "new_members.csv")
    new.loc[3, "has_card"] = "maybe"
    typed, problems = columns.typed(new, described)
    assert typed["is_member"].tolist() == [1.0, 1.0, 0.0, 0.0]  # Yes, y, no, N
    assert typed["newsletter"].tolist() == [1.0, 0.0, 0.0, 1.0]  # TRUE, false, False, true
    assert np.isnan(typed.loc[3, "has_card"])
    assert problems == [(3, "has_card: 'maybe' is not a yes/no value like those seen (1, 0)")]

    assert columns.infer_task(frame["renewed"], col["renewed"]) == ("classification", "renewed is yes/no")
    labels, missing = columns.target_values(frame["renewed"], "classification", col["renewed"])
    assert labels[:4] == ["no", "no", "yes", "yes"] and missing == []


@needs_cases
def test_leading_zeros_are_never_numbers_and_ids_and_phones_are_identifiers() -> None:
    frame = _frame(TABLES / "zip-leading-zeros" / "customers.csv")
    described = columns.infer_columns(frame, "churn")
    assert _roles(described) == {"customer_id": "identifier", "zip": "categorical", "phone": "identifier",
                                 "store_code": "categorical", "visits": "numeric", "churn": "target"}
    col = _by_name(described)
    assert col["phone"]["reason"] == "phone numbers: dropped"
    assert col["zip"]["levels"][:3] == ["01234", "02139", "02215"] and col["zip"]["n_levels"] == 8
    assert "leading zeros" in col["zip"]["reason"] and "leading zeros" in col["customer_id"]["reason"]
    assert sorted(col["store_code"]["levels"]) == ["007", "012", "101"]

    typed, problems = columns.typed(_frame(TABLES / "zip-leading-zeros" / "new_customers.csv"), described)
    assert list(typed.columns) == ["zip", "store_code", "visits"]
    assert typed["zip"].tolist() == ["02139", "01234", "03301"]  # an unseen zip is a value, not an error
    assert typed["store_code"].tolist() == ["007", "012", "101"]
    assert typed["zip"].dtype == object and problems == []


@needs_cases
def test_a_float_target_with_na_marks_is_regression_and_those_rows_are_missing() -> None:
    frame = _frame(TABLES / "target-na-strings" / "harvest.csv")
    described = columns.infer_columns(frame, "yield_t_ha")
    target = _by_name(described)["yield_t_ha"]
    assert (target["role"], target["missing"], target["conversion"]["kind"]) == ("target", 6, "number")
    assert (target["min"], target["max"]) == (2.63, 7.74)
    task, reason = columns.infer_task(frame["yield_t_ha"], target)
    assert task == "regression" and "decimals" in reason
    values, missing = columns.target_values(frame["yield_t_ha"], "regression", target)
    assert missing == [7, 15, 23, 31, 44, 52]  # n/a, -, N/A, #N/A, ?, blank
    assert [values[i] for i in (0, 1, 59)] == [6.89, 6.22, 5.37]
    assert all(values[i] is None for i in missing)


@needs_cases
def test_constant_empty_and_one_value_columns_are_dropped_with_the_reason() -> None:
    frame = _frame(TABLES / "constant-empty-cols" / "sensors.csv")
    col = _by_name(columns.infer_columns(frame, "fault"))
    assert col["notes"]["reason"] == "always empty: dropped"
    assert col["site"]["reason"] == "always 'plant-A': dropped"
    assert col["firmware"]["reason"] == "always 'v2.1': dropped"
    assert col["calib_offset"]["reason"] == ("'0.5' or empty: dropped; whether it is filled might carry signal "
                                             "(make it categorical to use that)")
    constant = ("notes", "site", "firmware", "calib_offset")
    assert all(col[n]["role"] == "constant" and col[n]["dropped"] for n in constant)
    assert (col["notes"]["missing"], col["calib_offset"]["missing"]) == (60, 9)
    typed, problems = columns.typed(_frame(TABLES / "constant-empty-cols" / "new_readings.csv"),
                                    list(col.values()))
    assert list(typed.columns) == ["temp_c", "vibration_mm_s"]
    assert typed["temp_c"].tolist() == [66.0, 48.5, 61.2] and problems == []


@needs_cases
@pytest.mark.parametrize(("name", "renamed"), [("exam.csv", ["score", "score (2)", "score.1"]),
                                               ("exam_blank_headers.csv", ["column 2", "column 3", "extra"])])
def test_renamed_duplicate_or_blank_headers_keep_their_own_data(name: str, renamed: list[str]) -> None:
    frame = _frame(TABLES / "duplicate-headers" / name)
    described = columns.infer_columns(frame, "passed")
    assert _roles(described) == {"student": "identifier", **dict.fromkeys(renamed, "numeric"), "passed": "target"}
    typed, _ = columns.typed(frame, described)
    assert typed.iloc[0].tolist() == [54.0, 87.0, 3.0]
    if name == "exam.csv":
        new, problems = columns.typed(_frame(TABLES / "duplicate-headers" / "exam_new.csv"), described)
        assert new.to_numpy().tolist() == [[95.0, 30.0, 0.0], [30.0, 95.0, 0.0], [40.0, 40.0, 5.0]]
        assert problems == []


@needs_cases
def test_1100_sparse_columns_are_read_in_under_two_seconds() -> None:
    frame = _frame(TABLES / "wide-1100-cols" / "counts_wide.csv")
    start = time.perf_counter()
    described = columns.infer_columns(frame, "class")
    typed, problems = columns.typed(frame, described)
    assert time.perf_counter() - start < 2.0
    col = _by_name(described)
    all_zero = [c for c in frame.columns if c not in ("sample", "class") and set(frame[c]) == {"0"}]
    assert all_zero == [f"g{i}" for i in range(1001, 1041)]
    assert {n for n, c in col.items() if c["role"] == "constant"} == set(all_zero)
    assert all(col[n]["reason"] == "always '0': dropped" for n in all_zero)
    assert col["g0007"]["role"] == col["g0420"]["role"] == "numeric"
    assert (col["g0007"]["min"], col["g0007"]["max"]) == (0.0, 3.0)
    assert col["sample"]["role"] == "identifier"
    assert typed.shape == (70, 1100 - 40) and problems == []
    assert columns.infer_task(frame["class"], col["class"]) == ("classification", "class holds 2 distinct labels")


@needs_cases
def test_leaking_columns_keep_their_roles() -> None:
    frame = _frame(TABLES / "target-leak-column" / "churn.csv")
    col = _by_name(columns.infer_columns(frame, "churned"))
    assert col["cancel_date"]["role"] == "datetime" and col["cancel_date"]["missing"] == 56
    assert (col["cancel_date"]["min"], col["cancel_date"]["max"]) == ("2023-01-05", "2023-10-11")
    assert col["refund_eur"]["role"] == "numeric" and col["account"]["role"] == "identifier"
    typed, _ = columns.typed(frame, list(col.values()))
    assert typed["cancel_date"].dtype == np.dtype("datetime64[ns]")
    assert typed["cancel_date"].iloc[0] == pd.Timestamp("2023-08-20") and pd.isna(typed["cancel_date"].iloc[1])


# ---- messy columns made here --------------------------------------------------------------------------


def _table(**cols: list[Any]) -> pd.DataFrame:
    return pd.DataFrame(cols, dtype=object)


N = 24


def test_identifiers_by_name_by_distinct_values_row_numbers_and_uuids() -> None:
    frame = _table(
        id=[str(1000 + 7 * i) for i in range(N)],
        row=[str(i + 1) for i in range(N)],
        uuid=[f"{i:08x}-1234-4abc-8def-{i:012x}" for i in range(N)],
        name=[f"person {chr(65 + i)}" for i in range(N)],
        height=[f"{150 + 1.5 * i:.1f}" for i in range(N)],  # all distinct, but a measure
        customerId=[f"C{i}" for i in range(N)],
        y=["a", "b"] * (N // 2),
    )
    roles = _roles(columns.infer_columns(frame, "y"))
    assert roles == {"id": "identifier", "row": "identifier", "uuid": "identifier", "name": "identifier",
                     "height": "numeric", "customerId": "identifier", "y": "target"}
    small = _table(code=["A1", "B2", "C3"], city=["x", "y", "z"], y=["a", "b", "a"])
    assert _roles(columns.infer_columns(small, "y")) == {"code": "identifier", "city": "categorical", "y": "target"}


def test_dates_in_three_forms_with_day_or_month_first_decided_by_a_value_above_12() -> None:
    frame = _table(
        iso=["2024-01-31", "2024-02-01 13:45", "2024-03-05T08:00:00", None] * 6,
        dmy=["31/01/2024", "01/02/2024", "05/03/2024", "n/a"] * 6,
        mdy=["01/31/2024", "02/01/2024", "03/05/2024", ""] * 6,
        unsure=["01/02/2024", "03/04/2024", "05/06/2024", "07/08/2024"] * 6,
        dotted=["01.02.2024", "03.04.2024", "05.06.2024", "07.08.2024"] * 6,
        version=["1.2.10", "1.3.11", "2.0.1", "1.2.10"] * 6,
        y=["a", "b", "c", "d"] * 6,
    )
    described = columns.infer_columns(frame, "y")
    col = _by_name(described)
    assert {n: c["role"] for n, c in col.items() if n != "y"} == {
        **dict.fromkeys(["iso", "dmy", "mdy", "unsure", "dotted"], "datetime"), "version": "categorical"}
    assert [col[n]["conversion"]["format"] for n in ("iso", "dmy", "mdy", "unsure", "dotted")] == [
        "ISO8601", "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y"]
    assert col["dmy"]["reason"] == "dates, DD/MM/YYYY; day first: a first number above 12"
    assert col["mdy"]["reason"] == "dates, MM/DD/YYYY; month first: a second number above 12"
    assert "no value above 12 tells day from month" in col["unsure"]["reason"]
    assert (col["dmy"]["min"], col["dmy"]["max"], col["dmy"]["missing"]) == ("2024-01-31", "2024-03-05", 6)
    assert col["iso"]["max"] == "2024-03-05 08:00:00"

    typed, problems = columns.typed(frame, described)
    expected = [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-01"), pd.Timestamp("2024-03-05")]
    assert typed["dmy"].iloc[:3].tolist() == expected == typed["mdy"].iloc[:3].tolist()
    assert typed["iso"].iloc[1] == pd.Timestamp("2024-02-01 13:45") and pd.isna(typed["iso"].iloc[3])
    assert typed["unsure"].iloc[0] == pd.Timestamp("2024-02-01") and problems == []

    new = frame.head(2).copy()
    new.loc[0, "dmy"], new.loc[1, "dmy"] = "31/02/2024", "15/03/2024 10:30"
    typed, problems = columns.typed(new, described)
    assert problems == [(0, "dmy: '31/02/2024' is not a date in the form DD/MM/YYYY")]
    assert typed["dmy"].iloc[1] == pd.Timestamp("2024-03-15 10:30")


def test_yes_no_flags_in_several_languages_and_columns_of_0_and_1() -> None:
    frame = _table(
        de=["ja", "nein", "Ja", "NEIN"] * 6,
        fr=["oui", "non", "Oui", "non"] * 6,
        bits=["0", "1", "1", "0"] * 6,
        tf=["T", "F", "t", "f"] * 6,
        only_yes=["yes", None, "Yes", None] * 6,
        counts=["0", "1", "2", "0"] * 6,
        y=["a", "b", "a", "b"] * 6,
    )
    described = columns.infer_columns(frame, "y")
    col = _by_name(described)
    assert _roles(described) == {"de": "boolean", "fr": "boolean", "bits": "boolean", "tf": "boolean",
                                 "only_yes": "constant", "counts": "numeric", "y": "target"}
    assert col["only_yes"]["reason"] == "always 'yes' (spelled 'yes', 'Yes'): dropped"
    typed, _ = columns.typed(frame, described)
    for name in ("de", "fr", "tf"):
        assert typed[name].iloc[:4].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert typed["bits"].iloc[:4].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_thousands_separators_decimal_commas_and_signs() -> None:
    frame = _table(
        comma=["1,200", "12,500.75", "950", "1,000,000"] * 6,
        space=["1 200", "12 500", "950", "1 000 000"] * 6,
        european=["1.200,50", "3,5", "12.000", "950"] * 6,
        swiss=["1'200.50", "3.5", "12'000", "950"] * 6,
        euro=["1.200 €", "€ 3,50", "12 €", "(4,00 €)"] * 6,
        signed=["-$5", "$1,200", "($45.00)", "$0"] * 6,
        y=["a", "b", "a", "b"] * 6,
    )
    described = columns.infer_columns(frame, "y")
    col = _by_name(described)
    assert all(col[n]["role"] == "numeric" for n in frame.columns if n != "y")
    assert col["european"]["conversion"] == {"kind": "number", "thousands": ".", "decimal": ","}
    assert col["european"]["reason"] == ("numbers ('1.200,50' is 1200.5; '.' separates thousands; ',' is the "
                                         "decimal mark)")
    assert col["space"]["conversion"]["thousands"] == " "
    assert col["euro"]["conversion"] == {"kind": "currency", "symbol": "€", "thousands": ".", "decimal": ","}
    typed, problems = columns.typed(frame, described)
    assert problems == []
    assert typed.iloc[:4].to_dict("list") == {
        "comma": [1200.0, 12500.75, 950.0, 1_000_000.0], "space": [1200.0, 12500.0, 950.0, 1_000_000.0],
        "european": [1200.5, 3.5, 12000.0, 950.0], "swiss": [1200.5, 3.5, 12000.0, 950.0],
        "euro": [1200.0, 3.5, 12.0, -4.0], "signed": [-5.0, 1200.0, -45.0, 0.0]}


def test_a_few_words_in_a_numeric_column_are_per_row_problems_not_a_category() -> None:
    prices = [str(10 + 3 * i) for i in range(40)]
    prices[7] = "abc"
    frame = _table(price=prices, y=["a", "b"] * 20)
    described = columns.infer_columns(frame, "y")
    assert described[0]["role"] == "numeric"
    typed, problems = columns.typed(frame, described)
    assert problems == [(7, "price: 'abc' is not a number")] and np.isnan(typed.loc[7, "price"])
    assert typed.loc[8, "price"] == 34.0
    money = columns.infer_columns(_table(fee=["$5", "$7"] * 12, y=["a", "b"] * 12), "y")
    _, problems = columns.typed(_table(fee=["€5", "6"]), money)
    assert problems == [(0, "fee: '€5' is not a number in $")]


def test_codes_with_leading_zeros_and_free_text() -> None:
    frame = _table(
        code=["007", "012", "101", "007"] * 6,
        fraction=["0.5", "0.25", "1.5", "0"] * 6,
        review=[f"the product number {i} arrived late and broken" for i in range(N)],
        y=["a", "b", "a", "b"] * 6,
    )
    col = _by_name(columns.infer_columns(frame, "y"))
    assert (col["code"]["role"], col["code"]["levels"]) == ("categorical", ["007", "012", "101"])
    assert col["fraction"]["role"] == "numeric"
    assert (col["review"]["role"], col["review"]["dropped"]) == ("text", True)
    assert col["review"]["reason"] == "free text (24 distinct values of several words): dropped"
    assert columns.looks_like_free_text(frame["review"]) and not columns.looks_like_free_text(frame["code"])


def test_missing_marks_are_no_value() -> None:
    assert columns.cells(pd.Series(["n/a", "-", "#N/A", "?", "NaN", "null", "", None, float("nan"), " 3 ",
                                    "#VALUE!", "NA"])) == [None] * 9 + ["3", None, None]
    # "none" is a level of a feature (a count named none, small or big), though a missing label
    assert columns.cells(pd.Series(["none", "small"])) == ["none", "small"]
    assert not columns.is_blank("0") and not columns.is_blank("NA?")


def test_the_task_follows_the_target() -> None:
    def task(values: list[str]) -> str:
        frame = _table(x=[str(i) for i in range(len(values))], t=values)
        target = _by_name(columns.infer_columns(frame, "t"))["t"]
        return columns.infer_task(frame["t"], target)[0]

    assert task(["1", "2", "3"] * 20) == "classification"  # few whole numbers: classes
    assert task([str(i % 40) for i in range(100)]) == "regression"  # many whole numbers
    assert task([str(i % 8) for i in range(200)]) == "classification"  # 8 values, 4% of the rows
    assert task(["1.5", "2.25", "3"] * 10) == "regression"
    assert task(["15%", "20%", "5%"] * 10) == "regression"
    assert task(["cat", "dog"] * 10) == "classification"
    frame = _table(x=["1"] * 30, t=[str(100 + i) for i in range(30)])  # distinct whole numbers: not an id
    target = _by_name(columns.infer_columns(frame, "t"))["t"]
    assert (target["conversion"]["kind"], target["min"], target["max"]) == ("number", 100.0, 129.0)
    assert columns.infer_task(frame["t"], target) == ("regression", "t holds 30 distinct whole numbers: a quantity")
    frame = _table(x=["1", "2"], t=["2024-01-01", "2024-02-01"])
    with pytest.raises(GlassboxError, match="^the target t holds dates"):
        columns.infer_task(frame["t"], _by_name(columns.infer_columns(frame, "t"))["t"])
    frame = _table(x=["1", "2"], t=["n/a", None])
    with pytest.raises(GlassboxError, match="^the target t is empty in every row$"):
        columns.infer_task(frame["t"], _by_name(columns.infer_columns(frame, "t"))["t"])


def test_target_values_for_classes_and_numbers() -> None:
    frame = _table(x=["1"] * 6, t=["1", "2.0", "2", "n/a", "3", "?"])
    target = _by_name(columns.infer_columns(frame, "t"))["t"]
    assert columns.target_values(frame["t"], "classification", target) == (["1", "2", "2", None, "3", None], [3, 5])
    assert columns.target_values(frame["t"], "regression", target) == ([1.0, 2.0, 2.0, None, 3.0, None], [3, 5])
    flags = _table(x=["1"] * 5, t=["Yes", "y", "no", "N", "yes"])
    target = _by_name(columns.infer_columns(flags, "t"))["t"]
    assert columns.target_values(flags["t"], "classification", target)[0] == ["Yes", "Yes", "no", "no", "Yes"]
    words = _table(x=["1"] * 3, t=["a", "b", "c"])
    with pytest.raises(GlassboxError, match="^the target t holds no numbers"):
        columns.target_values(words["t"], "regression", _by_name(columns.infer_columns(words, "t"))["t"])
    with pytest.raises(GlassboxError, match="^unknown task 'forecast'"):
        columns.target_values(words["t"], "forecast", {"name": "t"})


# ---- the user's roles ---------------------------------------------------------------------------------


def _user_table() -> pd.DataFrame:
    return _table(
        zip=["02139", "01234", "02139", "90210"] * 6,
        city=["Boston", "Reno", "Boston", "Austin"] * 6,
        sex=["M", "F", "F", "F"] * 6,
        flag=["x", None, None, "x"] * 6,
        y=["a", "b", "a", "b"] * 6,
    )


def test_with_roles_recomputes_the_changed_column_only() -> None:
    frame = _user_table()
    described = columns.infer_columns(frame, "y")
    assert _roles(described)["flag"] == "constant"
    changed = columns.with_roles(frame, described, {"zip": "numeric", "sex": "boolean", "flag": "categorical",
                                                    "city": columns.DROP})
    col = _by_name(changed)
    assert (col["zip"]["role"], col["zip"]["min"], col["zip"]["max"]) == ("numeric", 1234.0, 90210.0)
    assert col["zip"]["reason"] == "numeric, set by you: whole numbers"
    assert col["sex"]["conversion"] == {"kind": "boolean", "true": ["M"], "false": ["F"]}
    assert (col["flag"]["role"], col["flag"]["levels"], col["flag"]["dropped"]) == ("categorical", ["x"], False)
    assert (col["city"]["role"], col["city"]["dropped"]) == ("categorical", True)
    assert col["city"]["reason"].startswith("dropped by you")
    assert changed[-1] is described[-1]
    typed, problems = columns.typed(frame, changed)
    assert list(typed.columns) == ["zip", "sex", "flag"] and problems == []
    assert typed["zip"].iloc[:2].tolist() == [2139.0, 1234.0] and typed["sex"].iloc[:2].tolist() == [1.0, 0.0]
    assert typed["flag"].iloc[:2].tolist() == ["x", None]
    back = columns.with_roles(frame, changed, {"city": "categorical"})
    assert not _by_name(back)["city"]["dropped"]


def test_with_roles_refuses_what_cannot_apply_in_one_line() -> None:
    frame = _user_table()
    described = columns.infer_columns(frame, "y")
    cases = [
        ({"city": "numeric"}, "city cannot be numeric: 'Boston', 'Reno', 'Austin' are not numbers"),
        ({"city": "boolean"}, "city cannot be yes/no: it has 3 distinct value(s) ('Boston', 'Reno', 'Austin'), "
                              "a flag needs two"),
        ({"city": "datetime"}, "city cannot be datetime: 'Boston', 'Reno', 'Austin' are not dates in one format"),
        ({"town": "numeric"}, "no column named 'town' (columns: zip, city, sex, flag, y)"),
        ({"city": "number"}, "city: unknown role 'number' (roles: numeric, categorical, boolean, datetime, text, "
                             "identifier, constant)"),
        ({"y": "categorical"}, "y: choose the target column instead of changing roles to or from target"),
        ({"city": "target"}, "city: choose the target column instead of changing roles to or from target"),
    ]
    for change, message in cases:
        with pytest.raises(GlassboxError) as caught:
            columns.with_roles(frame, described, change)
        assert str(caught.value) == message


def test_typed_names_the_missing_columns() -> None:
    frame = _user_table()
    described = columns.infer_columns(frame, "y")
    with pytest.raises(GlassboxError, match=r"^the table lacks the column\(s\) 'zip', 'sex'$"):
        columns.typed(frame.drop(columns=["zip", "sex", "y"]), described)
    with pytest.raises(GlassboxError, match="^no column named 'price'"):
        columns.infer_columns(frame, "price")


def test_a_cell_that_is_only_a_sign_or_a_symbol_is_a_row_problem_not_a_crash() -> None:
    frame = pd.DataFrame({"price": ["$1,200", "$950", "$3,100", "$720", "$1,005"], "y": list("ababa")})
    described = columns.infer_columns(frame, "y")
    assert _by_name(described)["price"]["conversion"]["kind"] == "currency"
    new = pd.DataFrame({"price": ["$", "%", "-", "$-5", "$40"], "y": list("aaaaa")})
    typed, problems = columns.typed(new, described)
    assert [row for row, _ in problems] == [0, 1]  # "-" alone is a missing value, as in every column
    assert typed["price"].tolist()[3:] == [-5.0, 40.0] and typed["price"].isna().tolist()[:3] == [True] * 3
