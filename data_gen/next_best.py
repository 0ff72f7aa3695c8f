"""Which finding to check next: expected information gain about the class under the exact oracle.

Research and teaching on synthetic data only; never a clinical device.

Design
------
For a patient ``x`` and a column ``j`` that is not recorded, measuring ``j`` reveals its value
``v``. The expected information gain (in bits) about the calcification type ``K`` is the mutual
information between ``K`` and the outcome, given everything else that is recorded::

    IG_j = H(P(K | x_-j)) - Σ_v P(v | x_-j) · H(P(K | x_-j, v))

where ``x_-j`` is the patient without column ``j``. **Measuring a column replaces its own "not
recorded"**: in both terms column ``j``'s missingness (structural and the recording regime's) is
no evidence. Today's term sums ``j`` out, and an outcome contributes P(v | cell), the knowledge
base's value distribution, without the probability of being recorded. Every other column keeps
the meaning ``missing=`` and ``recording=`` give it in :func:`data_gen.oracle_proba`. For most
columns under complete or MCAR recording this is exactly ``oracle_proba`` of the patient; it
differs where a blank is evidence (an SLC34A2 test not done, a bone scan not done, a lesion size
absent because there is no discrete lesion; under the case-report regime any blank, since
present findings are reported more often than absent ones), which ``posterior_now`` and
``entropy_now_bits`` then reflect. For a column with structural missingness the hypothetical
value follows the knowledge base's value distribution in every cell, also where the column is
structurally absent (a lesion size for PAM before calcification): measuring is taken to reveal
a value.

The predictive distribution of the outcome comes from the oracle's own model, summed over the
latent cells: P(v | x_-j) ∝ Σ_k prior_k Σ_cells P(cell | k) P(x_-j | cell) P(v | cell). All
hypothetical patients of one patient (every candidate column with every outcome) are stacked in
one frame and scored by a single call of :func:`data_gen.oracle_log_likelihood` with
``measured=`` marking the column each row measures; the gain is then computed as the mutual
information of the stacked joint table, so it is always in ``[0, entropy_now_bits]``.
:func:`next_best_findings_batch` does the same for many patients at once: the rows of about 130
patients go into one oracle call, and per (patient, column) segment reductions give every gain,
outcome probability and posterior with no Python loop over patients.

Outcomes
--------
* binary: ``present`` (1) and ``absent`` (0); exact.
* categorical: every level; exact.
* continuous: a fixed grid of the value (linear for a normal column, in log value for a
  lognormal one) spanning ±6 standard deviations of every latent cell's distribution within the
  column's bounds, with a step of the smallest standard deviation of any cell, plus the exact
  point mass at 0 where the knowledge base has one (pack-years of never-smokers): 25-90 nodes
  per column. The gain is the midpoint rule over that grid. For a Gaussian integrand the rule's
  relative error is about 2·exp(-2π² (sd / step)²) ≈ 5e-9 at step = sd (the posterior's entropy
  is a smooth function of the value, so the integrand stays Gaussian-shaped), and the tails
  beyond ±6 sd hold 2e-9 of the mass; the error is larger only next to a truncation bound (age
  at 0 or 120), where it is of the order of the step times the density at the bound. The tests
  compare every continuous column with a grid 20 times finer (and the exact sum of the
  outcome masses): the difference is below 1e-3 bits. For display the grid is summarized as
  three ranges (tertiles of the predictive distribution, after the zero mass), each with its
  probability and posterior; the gain itself uses the full grid.

``focus=<class>`` ranks by how far the outcome is expected to move that one class
(rule in / rule out): Σ_v P(v | x_-j) · |P(class | x_-j, v) - P(class | x_-j)|, with the lowest
and highest P(class | outcome) over the reported outcomes beside it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .contract import LABEL, ContractError, canonical_frame
from .knowledge import Knowledge, load_knowledge
from .likelihood import _IMPOSSIBLE
from .oracle import oracle_log_likelihood
from .prevalence import resolve_prevalence
from .sampler import LATENT_PREFIX

__all__ = ["next_best_findings", "next_best_findings_batch", "continuous_grid", "GRID_SPAN_SD", "GRID_STEP_SD"]

#: The grid of a continuous column spans this many standard deviations around every cell's centre.
GRID_SPAN_SD = 6.0
#: The grid step as a fraction of the smallest standard deviation of any cell.
GRID_STEP_SD = 1.0
#: Ranges a continuous column's outcomes are summarized in for display (tertiles).
_DISPLAY_RANGES = 3

_BINARY_OUTCOMES = (("present", 1.0), ("absent", 0.0))


def _kb(knowledge) -> Knowledge:
    return knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)


_GRIDS: dict = {}


def continuous_grid(column: str, knowledge=None, *, step_sd: float = GRID_STEP_SD, span_sd: float = GRID_SPAN_SD):
    """The quadrature nodes of a continuous column: ``(values, weights, has_zero)``.

    ``values`` (n,) are the nodes in the column's unit, ``weights`` (n,) the midpoint rule's
    weights such that Σ weights · density(values) ≈ P(value > 0) (the density in the column's
    unit; for a lognormal column the step is in log value and the weight includes the Jacobian
    ``value``). ``has_zero`` says whether a point mass at 0 exists, which is then an extra
    outcome. Cached per knowledge base and step.
    """
    kb = _kb(knowledge)
    key = (kb.sha256, column, float(step_sd), float(span_sd))
    if key in _GRIDS:
        return _GRIDS[key]
    t = kb.cells
    if column not in t.continuous:
        raise ValueError(f"{column!r} is not a continuous column; continuous columns: {list(t.continuous)}")
    j = t.continuous.index(column)
    prm = t.cont_params[j]
    lo_b, hi_b = t.cont_bounds[j]
    zero = prm.get("zero", np.zeros(t.n_cells))
    if t.cont_dist[j] == "normal":
        centre, sd = prm["mean"], prm["sd"]
    else:
        centre, sd = np.log(prm["median"]), np.log(prm["gsd"])
        lo_b = math.log(lo_b) if lo_b > 0 else -np.inf
        hi_b = math.log(hi_b) if np.isfinite(hi_b) else np.inf
    a = max(float(np.min(centre - span_sd * sd)), lo_b)
    b = min(float(np.max(centre + span_sd * sd)), hi_b)
    n = max(int(math.ceil((b - a) / (step_sd * float(np.min(sd))))), 8)
    width = (b - a) / n
    u = a + width * (np.arange(n) + 0.5)
    if t.cont_dist[j] == "normal":
        values, weights = u, np.full(n, width)
    else:
        values = np.exp(u)
        weights = width * values
    out = (values, weights, bool((zero > 0).any()))
    _GRIDS[key] = out
    return out


def _one_patient(patient, kb: Knowledge) -> pd.DataFrame:
    if isinstance(patient, pd.Series):
        patient = patient.to_frame().T
    elif isinstance(patient, Mapping):
        patient = pd.DataFrame([dict(patient)])
    if not isinstance(patient, pd.DataFrame):
        raise ValueError(
            f"patient must be a one-row pandas DataFrame, a Series or a mapping column -> value; got {type(patient).__name__}"
        )
    if len(patient) != 1:
        raise ValueError(f"next_best_findings takes one patient (one row); got {len(patient)} rows: call it once per patient")
    # a misspelt column would otherwise count as not recorded; the label and latent columns of a
    # generated cohort are ignored, as by the oracle
    unknown = [str(c) for c in patient.columns if c not in kb.columns and c != LABEL and not str(c).startswith(LATENT_PREFIX)]
    if unknown:
        hints = []
        for c in unknown[:5]:
            close = difflib.get_close_matches(c, kb.column_names, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ContractError(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(hints)}"
            f"{' and more' if len(unknown) > 5 else ''}; allowed: the contract's columns (docs/data-dictionary.md)"
        )
    keep = [c for c in patient.columns if c in kb.columns]
    return canonical_frame(patient[keep].reindex(columns=list(kb.column_names)), kb)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.maximum(-terms.sum(axis=-1), 0.0)


def _softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(a - a.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.0f}"


def next_best_findings(
    patient,
    *,
    prevalence=None,
    missing: str = "model",
    recording=None,
    focus: str | None = None,
    top: int | None = None,
    knowledge=None,
) -> pd.DataFrame:
    """Rank the columns not recorded for a patient by what measuring them is expected to teach.

    Parameters
    ----------
    patient : pandas.DataFrame (one row), pandas.Series or mapping column -> value
        One patient in the input contract (checked like :func:`data_gen.validate_frame`; the
        label and columns outside the contract are ignored). NaN / absent = not recorded.
    prevalence : mapping class -> share, optional
        Class mix of the setting; defaults to the knowledge base's prevalence.
    missing : {"model", "ignore"}
        What the patient's *other* blanks mean, as in :func:`data_gen.oracle_proba`.
    recording : None, "complete", float, str, RecordingRegime or list of pairs
        The recording regime of those blanks, as in :func:`data_gen.oracle_proba`. For a sparse
        patient entered by hand, ``"case_report"`` (blanks as in published case reports) or
        ``missing="ignore"``; under complete records most blanks are impossible.
    focus : str, optional
        A class name: rank by the expected movement of that class's probability instead
        (rule in / rule out).
    top : int, optional
        Keep the ``top`` best columns (all when None); at least 1.
    knowledge : Knowledge or path, optional

    Returns
    -------
    pandas.DataFrame
        One row per column that is not recorded (a recorded column never appears), best first,
        with a fresh RangeIndex and columns:

        ``column`` (str), ``kind`` ("binary", "categorical", "continuous"),
        ``expected_information_gain_bits`` (float, in [0, ``entropy_now_bits``]),
        ``entropy_now_bits`` (entropy of P(class | x_-j), bits), ``outcomes`` (tuple of str:
        "present"/"absent", the levels, or for a continuous column "0 <unit>" where a point
        mass exists and three value ranges), ``outcome_probabilities`` (tuple of float summing
        to 1, one per outcome), ``posterior_after`` (tuple of dicts class -> probability, one
        per outcome), ``posterior_now`` (dict class -> probability, column j summed out).
        With ``focus`` also: ``focus_class``, ``expected_focus_shift`` (the ranking score, a
        probability in [0, 1]), ``focus_probability_now``, ``focus_probability_min`` and
        ``focus_probability_max`` (over the listed outcomes: how far the column can rule the
        class out or in).

    Raises
    ------
    ValueError
        A frame with other than one row, a bad value (the contract's message, naming the
        column), an unknown ``focus`` class (the message lists the classes), ``top`` < 1, an
        invalid ``missing`` / ``recording`` / ``prevalence``, or a patient impossible under
        every class given the recorded values (nothing to rank).

    Notes
    -----
    Cost: one oracle call on at most 247 hypothetical patients (88 binary outcomes, 5
    categorical, the continuous grids), 20-40 ms per patient on one core
    (``benchmarks/bench_next_best.py``); :func:`next_best_findings_batch` ranks many patients
    at a few ms each.

    Examples
    --------
    >>> import pandas as pd
    >>> from data_gen import next_best_findings
    >>> p = pd.DataFrame([{"age_years": 60, "sex": "female", "zone": "lower",
    ...                    "calcified_nodules": 1, "lesion_size_mm": 3.0}])
    >>> nb = next_best_findings(p, recording="case_report", top=3)
    >>> len(nb), bool((nb["expected_information_gain_bits"] >= 0).all())
    (3, True)
    """
    kb = _kb(knowledge)
    row = _one_patient(patient, kb)
    res = _ranked(row, kb, prevalence=prevalence, missing=missing, recording=recording, focus=focus, top=top, strict=True)
    return res.drop(columns=["patient"])


def next_best_findings_batch(
    patients: pd.DataFrame,
    *,
    prevalence=None,
    missing: str = "model",
    recording=None,
    focus: str | None = None,
    top: int | None = None,
    knowledge=None,
) -> pd.DataFrame:
    """:func:`next_best_findings` for many patients at once, vectorized across them.

    Parameters are those of :func:`next_best_findings`, except ``patients``: a frame of any
    number of patients in the input contract (every contract column present, NaN = not
    recorded; checked like :func:`data_gen.validate_frame`).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`next_best_findings` plus ``patient`` (the row's index label),
        first; per patient its ``top`` best columns (all when None), best first; patients in
        their order. A patient that is impossible under every class (a declared impossible
        combination) has no rows.

    Notes
    -----
    Patients are processed in batches of about 32,000 hypothetical rows (one oracle call per
    batch, ~70 patients); the gains, outcome probabilities and posteriors are computed with
    segment reductions over the stacked rows, with no Python loop over patients except to
    format the rows kept.
    """
    kb = _kb(knowledge)
    frame = canonical_frame(patients, kb)
    return _ranked(frame, kb, prevalence=prevalence, missing=missing, recording=recording, focus=focus, top=top, strict=False)


def _ranked(frame, kb, *, prevalence, missing, recording, focus, top, strict: bool) -> pd.DataFrame:
    """The ranking of checked patients; ``strict``: refuse an impossible patient (one patient)."""
    prior = resolve_prevalence(prevalence, kb)
    classes = list(kb.class_names)
    if focus is not None and focus not in classes:
        raise ValueError(f"focus must be one of the classes {classes}, got {focus!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1):
        raise ValueError(f"top must be a whole number >= 1 (or None for every column), got {top!r}")
    tpl = _template(kb)
    per_batch = max(1, _BATCH_ROWS // len(tpl.col))
    parts = []
    for b in range(0, len(frame), per_batch):  # batches of patients, each one oracle call
        parts.append(_rank_batch(frame.iloc[b : b + per_batch], kb, tpl, prior, missing, recording, focus, top, strict))
    cols = _OUTPUT_COLUMNS + (_FOCUS_COLUMNS if focus is not None else [])
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return out.reindex(columns=cols)  # a patient with every column recorded has no rows to add focus columns to


_OUTPUT_COLUMNS = ["patient", "column", "kind", "expected_information_gain_bits", "entropy_now_bits", "outcomes",
                   "outcome_probabilities", "posterior_after", "posterior_now"]
_FOCUS_COLUMNS = ["focus_class", "expected_focus_shift", "focus_probability_now", "focus_probability_min", "focus_probability_max"]
#: Hypothetical rows per oracle call when many patients are ranked.
_BATCH_ROWS = 1 << 15


class _Template:
    """Every (column, outcome) pair of the knowledge base, grouped by column in contract order."""

    def __init__(self, kb: Knowledge):
        t = kb.cells
        col, val, logw = [], [], []
        for jc, name in enumerate(kb.column_names):
            spec = kb.columns[name]
            if spec.kind == "binary":
                v, w = [x for _, x in _BINARY_OUTCOMES], np.zeros(2)
            elif spec.kind == "categorical":
                v = list(range(len(t.cat_levels[t.categorical.index(name)])))  # level codes
                w = np.zeros(len(v))
            else:
                nodes, weights, has_zero = continuous_grid(name, kb)
                v = ([0.0] if has_zero else []) + list(nodes)
                w = np.log(np.concatenate([[1.0] if has_zero else [], weights]))
            col += [jc] * len(v)
            val += list(map(float, v))
            logw.append(w)
        self.col = np.asarray(col, dtype=np.int64)
        self.val = np.asarray(val)
        self.logw = np.concatenate(logw)


_TEMPLATES: dict = {}


def _template(kb: Knowledge) -> _Template:
    if kb.sha256 not in _TEMPLATES:
        _TEMPLATES[kb.sha256] = _Template(kb)
    return _TEMPLATES[kb.sha256]


def _rank_batch(frame, kb, tpl, prior, missing, recording, focus, top, strict):
    """The ranked next findings of a batch of checked patients (one oracle call)."""
    t = kb.cells
    names = list(kb.column_names)
    n = len(frame)
    blank = frame[names].isna().to_numpy()  # (n, J)
    sel = blank[:, tpl.col]  # (n, T): the template rows each patient needs
    pat, trow = np.nonzero(sel)  # rows ordered by patient, then column, then outcome
    if len(pat) == 0:
        return pd.DataFrame(columns=_OUTPUT_COLUMNS)
    rcol = tpl.col[trow]
    # the hypothetical patients, column by column in the contract's dtypes
    data = {}
    for jc, name in enumerate(names):
        mine = rcol == jc
        if kb.columns[name].kind == "categorical":
            codes = frame[name].cat.codes.to_numpy().astype(np.int64)[pat]
            codes[mine] = tpl.val[trow[mine]].astype(np.int64)
            data[name] = pd.Categorical.from_codes(codes, categories=list(t.cat_levels[t.categorical.index(name)]))
        else:
            v = frame[name].to_numpy(dtype=float, na_value=np.nan)[pat]
            v[mine] = tpl.val[trow[mine]]
            data[name] = v
    measured = np.zeros((len(pat), len(names)), dtype=bool)
    measured[np.arange(len(pat)), rcol] = True
    ll = oracle_log_likelihood(pd.DataFrame(data), missing=missing, recording=recording, knowledge=kb, measured=measured).to_numpy()
    a = ll + np.where(prior > 0, np.log(np.where(prior > 0, prior, 1.0)), _IMPOSSIBLE)[None, :]
    row_max = a.max(axis=1)
    post = _softmax(a)  # (R, K) posterior after each outcome
    log_mass = row_max + np.log(np.exp(a - row_max[:, None]).sum(axis=1)) + tpl.logw[trow]
    # segments: one per (patient, candidate column), contiguous
    key = pat * len(names) + rcol
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    seg = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1  # segment of every row
    seg_max = np.maximum.reduceat(log_mass, starts)
    e = np.exp(log_mass - seg_max[seg])
    p = e / np.add.reduceat(e, starts)[seg]  # P(outcome | x_-j) within each segment
    now = np.add.reduceat(p[:, None] * post, starts)  # (S, K)
    h_now = _entropy_bits(now)
    gain = np.clip(h_now - np.add.reduceat(p * _entropy_bits(post), starts), 0.0, h_now)
    s_pat, s_col = pat[starts], rcol[starts]
    possible = np.zeros(n, dtype=bool)
    np.logical_or.at(possible, s_pat, seg_max > _IMPOSSIBLE / 2)
    if strict and not possible.all():
        raise ValueError(
            "the patient is impossible under every class of the knowledge base given the recorded values "
            "(a declared impossible combination, or blanks that this recording= never leaves); "
            "nothing to rank: check the values, or use recording='case_report' or missing='ignore'"
        )
    if focus is not None:
        f = kb.class_names.index(focus)
        score = np.add.reduceat(p * np.abs(post[:, f] - now[seg, f]), starts)
    else:
        score = gain
    # per patient, best first (ties keep the contract's column order), the top kept
    keep = possible[s_pat]
    order = np.lexsort((s_col, -score, s_pat))
    order = order[keep[order]]
    rank = np.arange(len(order)) - np.searchsorted(s_pat[order], s_pat[order], side="left")
    if top is not None:
        order = order[rank < int(top)]
    ends = np.r_[starts[1:], len(pat)]
    classes = list(kb.class_names)
    records = []
    for sg in order:  # formatting of the rows kept (top per patient)
        col = names[s_col[sg]]
        sl = slice(starts[sg], ends[sg])
        vals = tpl.val[trow[sl]]
        labels, probs, posts = _outcomes(kb, col, vals, p[sl], post[sl])
        rec = {
            "patient": frame.index[s_pat[sg]],
            "column": col,
            "kind": kb.columns[col].kind,
            "expected_information_gain_bits": float(gain[sg]),
            "entropy_now_bits": float(h_now[sg]),
            "outcomes": labels,
            "outcome_probabilities": probs,
            "posterior_after": tuple({k: float(q[i]) for i, k in enumerate(classes)} for q in posts),
            "posterior_now": {k: float(now[sg, i]) for i, k in enumerate(classes)},
        }
        if focus is not None:
            fp = [q[f] for q in posts]
            rec.update(focus_class=focus, expected_focus_shift=float(score[sg]), focus_probability_now=float(now[sg, f]),
                       focus_probability_min=float(min(fp)), focus_probability_max=float(max(fp)))
        records.append(rec)
    return pd.DataFrame(records, columns=_OUTPUT_COLUMNS + (_FOCUS_COLUMNS if focus is not None else []))


def _outcomes(kb: Knowledge, col: str, vals, p: np.ndarray, post: np.ndarray):
    """Display outcomes: (labels, probabilities, posteriors), continuous grids in ranges."""
    spec = kb.columns[col]
    if spec.kind == "binary":
        return tuple(lbl for lbl, _ in _BINARY_OUTCOMES), tuple(map(float, p)), tuple(post)
    if spec.kind == "categorical":
        levels = kb.cells.cat_levels[kb.cells.categorical.index(col)]
        return tuple(levels[int(v)] for v in vals), tuple(map(float, p)), tuple(post)
    unit = f" {spec.unit}" if spec.unit else ""
    labels, probs, posts = [], [], []
    v = np.asarray(vals, dtype=float)
    start = 0
    if v[0] == 0.0:
        labels.append(f"0{unit}")
        probs.append(float(p[0]))
        posts.append(post[0])
        start = 1
    pp, vv, qq = p[start:], v[start:], post[start:]
    total = pp.sum()
    if total <= 0:
        return tuple(labels), tuple(probs), tuple(posts)
    cum = np.cumsum(pp) / total
    # each range ends at the node whose cumulative share is closest to r / 3
    ends = [int(np.argmin(np.abs(cum - r / _DISPLAY_RANGES))) + 1 for r in range(1, _DISPLAY_RANGES)]
    bounds = [0, *np.maximum.accumulate(ends), len(vv)]
    for r in range(_DISPLAY_RANGES):
        lo, hi = bounds[r], bounds[r + 1]
        if hi <= lo:
            continue
        mass = pp[lo:hi].sum()
        if r == 0:
            text = f"< {_fmt(vv[hi] if hi < len(vv) else vv[-1])}{unit}"
        elif r == _DISPLAY_RANGES - 1:
            text = f"≥ {_fmt(vv[lo])}{unit}"
        else:
            text = f"{_fmt(vv[lo])}–{_fmt(vv[hi] if hi < len(vv) else vv[-1])}{unit}"
        labels.append(text)
        probs.append(float(mass))
        posts.append((pp[lo:hi] @ qq[lo:hi]) / mass if mass > 0 else qq[lo])
    return tuple(labels), tuple(probs), tuple(posts)
