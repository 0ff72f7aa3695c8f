"""How faithfully a cohort reproduces the knowledge base's frequencies.

For every class, every binary column and every level of a categorical column, the knowledge
base implies a probability among the patients in whom the column is recorded::

    expected = Σ_cells w_c · P(x = 1 | cell c) / Σ_cells w_c,   w_c = P(cell c | class) · P(recorded | cell c)

(the parent of a ``given`` column is summed out). When the missing rate is the same in every cell
of a class, as it is for every binary and categorical column of the shipped knowledge base,
``w_c`` reduces to ``P(cell c | class)``. The observed frequency is compared with it through the
binomial z-score ``(observed - expected) / sqrt(expected (1 - expected) / n_recorded)``.

:class:`FidelityTally` accumulates the counts over chunks, so a cohort written in pieces (as
``pulmocalc generate`` does) can be checked without holding it in memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import LABEL, validate_frame
from .knowledge import Knowledge, load_knowledge

__all__ = ["fidelity_table", "FidelityTally", "FIDELITY_COLUMNS"]

FIDELITY_COLUMNS = ("class", "column", "level", "expected", "observed", "n_recorded", "se", "z")


def fidelity_table(df: pd.DataFrame, knowledge: Knowledge | str | None = None) -> pd.DataFrame:
    """Compare a labelled cohort's frequencies with those the knowledge base implies.

    Parameters
    ----------
    df : pandas.DataFrame
        Patients with the input-contract columns and the label ``calcification_type`` (as
        returned by :func:`data_gen.generate_cohort` or read back from its CSV/Parquet file).
        Extra columns (e.g. latent ones) are ignored.
    knowledge : Knowledge or path, optional
        The knowledge base the cohort should follow; defaults to the shipped one.

    Returns
    -------
    pandas.DataFrame
        One row per (class, column, level) for every class present in ``df``; ``level`` is
        ``"1"`` for a binary column and the level name for a categorical one. Columns:
        ``class``, ``column``, ``level``, ``expected`` (the knowledge base's probability among
        recorded values), ``observed``, ``n_recorded``, ``se`` (binomial standard error of
        ``observed`` under ``expected``) and ``z``. Sorted by ``|z|``, largest first; ``z`` is
        NaN where the column is never recorded in the class, and infinite where the knowledge
        base makes a frequency certain (0 or 1) and the cohort disagrees.

    Raises
    ------
    ValueError
        When ``df`` breaks the input contract or lacks the label (a ``ContractError`` naming
        the column, rows and values).

    Examples
    --------
    >>> from data_gen import fidelity_table, generate_cohort
    >>> table = fidelity_table(generate_cohort(20_000, random_state=0))
    >>> list(table.columns)
    ['class', 'column', 'level', 'expected', 'observed', 'n_recorded', 'se', 'z']
    >>> bool((table["z"].abs() < 6).all())
    True
    """
    return FidelityTally(knowledge).add(df).table()


class FidelityTally:
    """Counts for :func:`fidelity_table`, accumulated chunk by chunk.

    Parameters
    ----------
    knowledge : Knowledge or path, optional
        The knowledge base; defaults to the shipped one.

    Examples
    --------
    >>> from data_gen import iter_cohort
    >>> from data_gen.fidelity import FidelityTally
    >>> tally = FidelityTally()
    >>> for chunk in iter_cohort(30_000, chunk_size=10_000, random_state=1):
    ...     _ = tally.add(chunk)
    >>> int(tally.class_counts.sum())
    30000
    """

    def __init__(self, knowledge: Knowledge | str | None = None):
        self.knowledge = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
        kb = self.knowledge
        rows, binary_pos, cat_pos = [], {}, {}
        for col, spec in kb.columns.items():
            if spec.kind == "binary":
                binary_pos[col] = len(rows)
                rows.append((col, "1"))
            elif spec.kind == "categorical":
                cat_pos[col] = len(rows)
                rows += [(col, lv) for lv in spec.levels]
        self._rows = rows
        self._binary_pos = binary_pos
        self._cat_pos = cat_pos
        k, r = len(kb.class_names), len(rows)
        self._n_class = np.zeros(k, dtype=np.int64)
        self._n_recorded = np.zeros((k, r), dtype=np.int64)
        self._n_hit = np.zeros((k, r), dtype=np.int64)
        self._expected = _expected(kb, rows, binary_pos, cat_pos)

    @property
    def class_counts(self) -> pd.Series:
        """Patients seen so far per class, in the knowledge base's class order."""
        return pd.Series(self._n_class, index=list(self.knowledge.class_names), name="count")

    def add(self, df: pd.DataFrame) -> "FidelityTally":
        """Count one chunk of patients; returns ``self`` so calls can be chained."""
        kb = self.knowledge
        frame = validate_frame(df, knowledge=kb, label="required", extra="ignore")
        k = len(kb.class_names)
        cls = np.asarray(frame[LABEL].cat.codes, dtype=np.int64)
        self._n_class += np.bincount(cls, minlength=k)
        for col, r in self._binary_pos.items():
            arr = frame[col].array
            rec = ~np.asarray(arr.isna())
            vals = arr.to_numpy(dtype=np.int64, na_value=0)
            self._n_recorded[:, r] += np.bincount(cls[rec], minlength=k)
            self._n_hit[:, r] += np.bincount(cls[rec & (vals == 1)], minlength=k)
        for col, r0 in self._cat_pos.items():
            codes = np.asarray(frame[col].cat.codes, dtype=np.int64)
            rec = codes >= 0
            n_rec = np.bincount(cls[rec], minlength=k)
            for lv in range(len(kb.columns[col].levels)):
                self._n_recorded[:, r0 + lv] += n_rec
                self._n_hit[:, r0 + lv] += np.bincount(cls[codes == lv], minlength=k)
        return self

    def table(self) -> pd.DataFrame:
        """The fidelity table of everything added so far (see :func:`fidelity_table`)."""
        kb = self.knowledge
        present = np.flatnonzero(self._n_class > 0)
        n_rec = self._n_recorded[present].astype(float)
        exp = self._expected[present]
        with np.errstate(divide="ignore", invalid="ignore"):
            obs = np.where(n_rec > 0, self._n_hit[present] / n_rec, np.nan)
            se = np.sqrt(exp * (1 - exp) / n_rec)
            z = (obs - exp) / se
        # a frequency the knowledge base makes certain has se 0: agreement is z 0, any
        # disagreement is infinitely surprising (inf, with the sign of the deviation)
        certain = (se == 0) & ~np.isnan(obs)
        z = np.where(certain & (obs == exp), 0.0, z)
        r = len(self._rows)
        out = pd.DataFrame({
            "class": np.repeat([kb.class_names[i] for i in present], r),
            "column": [c for _ in present for c, _lv in self._rows],
            "level": [lv for _ in present for _c, lv in self._rows],
            "expected": exp.ravel(),
            "observed": obs.ravel(),
            "n_recorded": self._n_recorded[present].ravel(),
            "se": se.ravel(),
            "z": z.ravel(),
        })
        order = np.argsort(-np.nan_to_num(np.abs(out["z"].to_numpy()), nan=-1.0), kind="stable")
        return out.iloc[order].reset_index(drop=True)


def _expected(kb: Knowledge, rows, binary_pos, cat_pos) -> np.ndarray:
    """(classes, rows) probability of each row's value among recorded values of each class."""
    t = kb.cells
    out = np.full((len(kb.class_names), len(rows)), np.nan)
    p1 = t.p_marginal()
    bidx = {c: j for j, c in enumerate(t.binary)}
    cidx = {c: j for j, c in enumerate(t.categorical)}
    for k in range(len(kb.class_names)):
        cells = t.class_cells(k)
        w_cell = t.cell_prob[cells]
        for col, r in binary_pos.items():
            j = bidx[col]
            w = w_cell * (1 - t.binary_missing[j, cells])
            if w.sum() > 0:
                out[k, r] = w @ p1[j, cells] / w.sum()
        for col, r0 in cat_pos.items():
            j = cidx[col]
            w = w_cell * (1 - t.cat_missing[j, cells])
            if w.sum() > 0:
                out[k, r0 : r0 + len(kb.columns[col].levels)] = w @ t.cat_probs[j][cells] / w.sum()
    return out
