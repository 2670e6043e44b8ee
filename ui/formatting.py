"""Turning store values into short, human text: times, durations, rates, percentages and probabilities.

Pages show the same kinds of numbers in tables, metrics and captions; formatting them in one place
keeps "3 min 20 s" from being "200.0s" on another page, and a probability "0.62" in a caption from being
"62.0%" in a metric and "0.0000000000001" in the table beside them. Pure functions, no streamlit.
"""

from __future__ import annotations

import time
from typing import Any

_DASH = "—"
MISSING = _DASH
"""What a table shows for a value that does not exist (`st.dataframe(placeholder=MISSING)`), never "None"."""
PROBABILITY_FORMAT = "%.2f"
"""The one printf format of a probability (and of a change in one) in tables: `st.column_config.NumberColumn`."""


def timestamp(epoch_s: float | None) -> str:
    """A local date and time to the minute: what a person scanning a list of runs compares."""
    if epoch_s is None:
        return _DASH
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch_s))


def duration(seconds: float | None) -> str:
    """Seconds as '45 s', '3 min 20 s' or '2 h 05 min'; a dash when unknown."""
    if seconds is None or seconds < 0:
        return _DASH
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def percent(value: float | None, digits: int = 1) -> str:
    """A fraction in [0, 1] as a percentage; a dash when the metric does not exist yet."""
    if value is None:
        return _DASH
    return f"{value * 100:.{digits}f}%"


def rate(per_s: float | None) -> str:
    """A throughput, to three significant figures or so; the unit goes in the label."""
    if not per_s:
        return _DASH
    return f"{per_s:,.1f}" if per_s < 100 else f"{per_s:,.0f}"


def params(millions: float | None) -> str:
    return _DASH if millions is None else f"{millions:g} M"


def probability(value: float | None) -> str:
    """A probability in [0, 1] as '0.62', as `PROBABILITY_FORMAT` shows it in tables; a dash when unknown."""
    return _DASH if value is None else PROBABILITY_FORMAT % value


def change(after_minus_before: float, subject: str = "it") -> str:
    """A change of a probability in words: 'lowers it by 0.12', 'raises it by 0.02', or 'leaves it
    unchanged' when it rounds to zero: a sign a reader does not have to decode ('lowers it by -0.02')."""
    amount = probability(abs(after_minus_before))
    if amount == probability(0.0):
        return f"leaves {subject} unchanged"
    return f"{'lowers' if after_minus_before < 0 else 'raises'} {subject} by {amount}"


def amount(value: float | None) -> str:
    """A value in a target's own units (an error, a prediction) to four significant figures, with thousands
    separators from 10,000 on: '3.215', '0.0412', '25,310'; a dash when unknown."""
    if value is None:
        return _DASH
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def metric(shown: Any, value: float | None) -> str:
    """A task's figure (`core.tasks.Metric`) as people read it: a percentage ('91.2%'), an error in the target's
    units (`amount`, for figures where lower is better: MAE, RMSE, loss) or a score to three decimals (R²,
    ROC-AUC: '0.812'); a dash when the run has none."""
    if value is None:
        return _DASH
    if shown.percent:
        return percent(value)
    return f"{value:.3f}" if shown.higher_is_better else amount(value)
