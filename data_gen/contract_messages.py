"""The input contract's errors and how their messages show columns, rows and values.

Design: every refusal of a user's frame is a :class:`ContractError` whose message names the
column, the row(s) as the user counts them (a default index from 1), up to a few of the
offending values as typed, and what is allowed; many problems are joined into one message, up
to :data:`MAX_PROBLEMS`. The wording lives here once, so that the detailed column checks
(:mod:`data_gen.contract_columns`), the header checks (:mod:`data_gen.contract`), the file
reader and the prevalence check all speak alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .knowledge import Knowledge

#: Problems listed in one message; the rest are counted.
MAX_PROBLEMS = 10
_MAX_SHOWN = 5
_MAX_NAME = 60
_MAX_LISTED = 60  # absent columns listed in the notice (all of them, in practice)
_NOT_RECORDED = "or empty for not recorded"


class ContractError(ValueError):
    """Input that breaks the contract: the message names column, rows, values and what is allowed.

    Attributes
    ----------
    problems : tuple of str
        Each problem on its own (one per column); the message joins them.
    """

    def __init__(self, message: str, problems: tuple[str, ...] | None = None):
        super().__init__(message)
        self.problems = tuple(problems) if problems is not None else (message,)


class ContractWarning(UserWarning):
    """Input that is accepted but read in a way the user should know of (absent columns)."""


def _show(values) -> str:
    vals = list(values)
    shown = ", ".join(repr(_plain(v)) for v in vals[:_MAX_SHOWN])
    more = f" and {len(vals) - _MAX_SHOWN} more" if len(vals) > _MAX_SHOWN else ""
    return shown + more


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    # 130.0 read from a CSV is shown as the 130 the user typed; 0.5 stays 0.5
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


def _name(c) -> str:
    """A column name for a message, cut short when it is very long (e.g. a whole ;-separated header)."""
    text = repr(str(c))
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 4] + "...'"


def _display_index(index: pd.Index) -> pd.Index:
    """Row labels as messages show them: a default 0-based RangeIndex counts from 1."""
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None:
        return pd.RangeIndex(1, len(index) + 1)
    return index


def _rows(index: pd.Index, mask: np.ndarray) -> str:
    labels = index[mask]
    return f"row{'s' if len(labels) > 1 else ''} {_show(labels)}"


def _fail(column: str, index: pd.Index, mask: np.ndarray, values, allowed: str):
    raise ContractError(
        f"column {column!r}: {_rows(index, mask)} {'have' if mask.sum() > 1 else 'has'} "
        f"value{'s' if mask.sum() > 1 else ''} {_show(values)}; allowed: {allowed}"
    )



def _problems_error(problems: list[str]) -> ContractError:
    if len(problems) == 1:
        return ContractError(problems[0])
    shown = "; ".join(f"({i}) {p}" for i, p in enumerate(problems[:MAX_PROBLEMS], 1))
    more = f"; and {len(problems) - MAX_PROBLEMS} more problems" if len(problems) > MAX_PROBLEMS else ""
    return ContractError(f"{len(problems)} problems in the input: {shown}{more}", tuple(problems))


def absent_columns_notice(missing: list[str], kb: Knowledge) -> str:
    """The one-line notice listing absent contract columns (treated as not recorded)."""
    shown = ", ".join(missing[:_MAX_LISTED]) + (f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else "")
    return (
        f"{len(missing)} of {len(kb.column_names)} contract columns are absent and read as not recorded: {shown}"
    )


def _duplicated(dup: list[str]) -> str:
    return f"duplicated column{'s' if len(dup) > 1 else ''} " + ", ".join(_name(c) for c in dup)


def _unknown_note(names: list[str]) -> str:
    """The whole message when the header is one column holding separators (a wrong separator)."""
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|", ",")):
        return (
            f"the header is one column {_name(names[0])}: the file's separator was not recognized; "
            "give it with --sep (sep= in Python), e.g. --sep ';'"
        )
    return ""


def _range_text(spec) -> str:
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.plausible_min is not None or spec.plausible_max is not None:
        lo = spec.min if spec.plausible_min is None else spec.plausible_min
        hi = spec.max if spec.plausible_max is None else spec.plausible_max
        return f"{lo:g} to {hi:g}{unit}" if hi is not None else f">= {lo:g}{unit}"
    if spec.min is not None and spec.max is not None:
        return f"{spec.min:g} to {spec.max:g}{unit}"
    if spec.min is not None:
        return f"{'>' if spec.min_exclusive else '>='} {spec.min:g}{unit}"
    return f"a finite number{unit}"
