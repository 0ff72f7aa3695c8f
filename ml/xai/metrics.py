"""Agreement of attributions with a ground truth (OpenXAI's metrics), chance levels, deletion curves.

Design. Attributions and truths are arrays of shape (patients, columns, classes); every metric
is computed per (patient, class) row over the 52 columns, vectorised over rows, and summarised
by its mean with a standard error taken over patients (a patient's classes share one centring,
so they are not independent). Each metric also has its *chance level*, the expected value for
attributions that rank the columns in a uniformly random order with symmetric random signs
(what the random floor draws), computed per row from the truth's ties and zeros, so that
``value - chance`` is about 0 for an explainer that knows nothing.

The ground-truth metrics follow OpenXAI (Agarwal et al., NeurIPS 2022 Datasets and Benchmarks;
``openxai/metrics.py``: ``_construct_topk_dfs`` and ``_single_k_gt_faith`` for FA/RA/SA/SRA,
``rankcorr`` for RC, ``pairwise_comp`` for PRA). Two differences, both deliberate: OpenXAI's
ground truth is one weight vector whose sign is flipped by the binary prediction, ours is a
per-patient, per-class attribution; and top-k positions are taken with a *stable* argsort
(ties in column order) where OpenXAI's ``np.argsort`` is unstable, so the two agree wherever
there are no ties within the top k (``tests/ml/test_xai_metrics.py`` checks this against a
transcription of their code). Spearman (Pearson of average ranks) is ``ml.audit``'s; sign agreement
is ``ml.audit``'s except that a zero attribution counts one half (it states no sign).

Chance adjustment. Uniform chance is not the right zero for top-k and rank metrics: attributions
with no patient-specific knowledge of the classes still agree with the truth, in two ways. Some
columns (the continuous labs, age) carry large attributions for most patients under any model;
and any model, even one trained on permuted labels, tends to put its largest attributions on
the patient's unusual values (a rare finding present, a lab far from the mean), as the truth
does (for an additive model a column's value is (w_c - mean of w)·(x - E[x]) summed over its
encoded features, so two logistic regressions share the factor |x - E[x]| whatever their
weights). Each has its null, from fixed permutations: the *patient-shuffled* null scores the
attributions against other patients' truths for the same class (5 evenly spaced cyclic shifts
of the patients; keeps cohort-wide structure, breaks the patient), the *class-shuffled* null
against the same patient's truths for the other classes (keeps the patient's values, breaks the
class being explained; it needs 3 classes or more, see :func:`class_shuffled_null`). The
adjusted agreement, (value - null) / (1 - null) as in Cohen's kappa, is measured beyond the
larger of the two: a conservative zero that neither a cohort-wide per-class pattern nor the
patient's unusual values alone pass.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

__all__ = ["KS", "SHUFFLES", "agreement", "chance_levels", "class_shuffled_null", "deletion_curve", "pooled_agreement", "rows",
           "row_metrics", "shuffled_null"]

#: the top-k sizes of FA, RA, SA and SRA
KS = (3, 5, 10)
#: cyclic shifts of the patients averaged by the patient-shuffled null
SHUFFLES = 5


def rows(a) -> np.ndarray:
    """(patients, columns, classes) -> (patients * classes, columns), patient-major."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"attributions must have shape (patients, columns, classes), got {a.shape}")
    n, J, K = a.shape
    # rounding away float noise (12 significant digits of the array's largest value) keeps exact
    # ties tied and exact zeros zero, as ml.audit does, whatever the attributions' scale
    top = float(np.max(np.abs(a))) if a.size else 0.0
    scale = 10.0 ** np.floor(np.log10(top)) if top > 0 else 1.0
    return np.round(np.moveaxis(a, 2, 1).reshape(n * K, J) / scale, 12) * scale


def _check_pair(a, b, names=("attributions", "truth")) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays (patients, columns, classes) of one shape, finite, with patients."""
    out = []
    for x, name in zip((a, b), names):
        x = np.asarray(x)
        if x.dtype.kind not in "iufO":  # text, complex, booleans and dates are not attributions
            raise ValueError(f"{name} must be real numbers, got an array of dtype {x.dtype}")
        x = x.astype(np.float64)
        if x.ndim != 3:
            raise ValueError(f"{name} must have shape (patients, columns, classes), got {x.shape}")
        bad = ~np.isfinite(x)
        if bad.any():
            raise ValueError(f"{name} hold {int(bad.sum())} non-finite value(s) (NaN or inf), first at (patient, column, class) "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}; attributions and truths must be finite numbers")
        out.append(x)
    if out[0].shape != out[1].shape:
        raise ValueError(f"{names[0]} of shape {out[0].shape} do not match the {names[1]}'s {out[1].shape}")
    if out[0].shape[0] == 0:
        raise ValueError(f"{names[0]} have no patients (shape {out[0].shape})")
    if out[0].shape[2] == 0:
        raise ValueError(f"{names[0]} have no classes (shape {out[0].shape})")
    return out[0], out[1]


def _check_ks(ks, J: int) -> tuple[int, ...]:
    """The top-k sizes as a tuple of whole numbers between 1 and ``J``."""
    try:
        got = tuple(ks)
    except TypeError:
        raise ValueError(f"ks must be a sequence of top-k sizes (whole numbers), got {ks!r}") from None
    if not got or any(isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) for k in got):
        raise ValueError(f"ks must be a non-empty sequence of whole numbers, got {got!r}")
    if any(not 1 <= k <= J for k in got):
        raise ValueError(f"top-k sizes ks={got}: each must be between 1 and the {J} columns; pass ks= to choose others")
    return tuple(int(k) for k in got)


def _signed(B: np.ndarray, sign_tol: float) -> np.ndarray:
    """Columns of the truth that state a sign: |B| above ``sign_tol`` times the largest |B|."""
    top = float(np.max(np.abs(B))) if B.size else 0.0
    return np.abs(B) > sign_tol * top


def _dense(a: np.ndarray) -> np.ndarray:
    return rankdata(-np.abs(a), method="dense", axis=1)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    out = np.full(len(x), np.nan)
    ok = den > 0
    out[ok] = (x * y).sum(axis=1)[ok] / den[ok]
    return out


def row_metrics(A: np.ndarray, B: np.ndarray, ks=KS, sign_tol: float = 1e-9) -> dict[str, np.ndarray]:
    """Per-row metrics of attributions ``A`` against truth ``B``, both (rows, columns).

    Returns arrays of length rows (NaN where undefined): ``FA@k``, ``RA@k``, ``SA@k``,
    ``SRA@k`` for each k, ``RC`` (Pearson of the dense ranks of -|A| and -|B|), ``PRA`` (share
    of column pairs ordered alike by those ranks), ``spearman`` (signed values) and
    ``sign_agreement`` (share of columns with |B| > ``sign_tol`` × the largest |B| whose signs
    agree, a zero attribution counting one half; relative, so that a truth's unit does not
    change which columns count).
    """
    if A.shape != B.shape:
        raise ValueError(f"attributions of shape {A.shape} do not match the truth's {B.shape}")
    n, J = A.shape
    out: dict[str, np.ndarray] = {}
    rA, rB = _dense(A), _dense(B)
    sA, sB = np.sign(A), np.sign(B)
    r = np.arange(n)[:, None]
    for k in ks:
        if not 1 <= k <= J:
            raise ValueError(f"k must be between 1 and {J}, got {k}")
        tA = np.argsort(-np.abs(A), axis=1, kind="stable")[:, :k]
        tB = np.argsort(-np.abs(B), axis=1, kind="stable")[:, :k]
        inA = np.zeros((n, J), bool)
        inB = np.zeros((n, J), bool)
        inA[r, tA] = True
        inB[r, tB] = True
        both = inA & inB
        out[f"FA@{k}"] = both.sum(axis=1) / k
        out[f"SA@{k}"] = (both & (sA == sB)).sum(axis=1) / k
        same = (tA == tB) & (np.take_along_axis(rA, tA, 1) == np.take_along_axis(rB, tB, 1))
        out[f"RA@{k}"] = same.sum(axis=1) / k
        out[f"SRA@{k}"] = (same & (np.take_along_axis(sA, tA, 1) == np.take_along_axis(sB, tB, 1))).sum(axis=1) / k
    out["RC"] = _rowwise_pearson(rA.astype(float), rB.astype(float))
    i, j = np.triu_indices(J, 1)
    out["PRA"] = ((rA[:, i] < rA[:, j]) == (rB[:, i] < rB[:, j])).mean(axis=1)
    # Spearman: Pearson of average ranks (NaN where a row is constant), as ml.audit computes it
    out["spearman"] = _rowwise_pearson(rankdata(A, axis=1), rankdata(B, axis=1))
    mask = _signed(B, sign_tol)
    # a zero attribution states no sign: half credit, so an explainer that leaves columns at
    # exactly 0 (a small booster's unused columns) is not scored below chance for it
    agree = (((sA == sB) + 0.5 * (sA == 0)) * mask).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sign_agreement"] = np.where(mask.any(axis=1), agree / mask.sum(axis=1), np.nan)
    return out


def chance_levels(B: np.ndarray, ks=KS, sign_tol: float = 1e-9) -> dict[str, np.ndarray]:
    """Per-row expected metrics of attributions with a uniformly random column order and signs.

    For truth rows ``B`` (rows, columns): FA@k = k/J; SA@k = (non-zero columns in B's top k)
    / 2J; RA@k = (top-k positions p whose column has dense rank p + 1 in B) / (kJ), as a tie in
    B shifts the ranks OpenXAI compares; SRA@k the same counting non-zero columns only, halved;
    RC, Spearman 0; PRA and sign agreement 1/2.
    """
    n, J = B.shape
    out: dict[str, np.ndarray] = {}
    rB = _dense(B)
    for k in ks:
        tB = np.argsort(-np.abs(B), axis=1, kind="stable")[:, :k]
        nz = np.abs(np.take_along_axis(B, tB, 1)) > 0
        exact = np.take_along_axis(rB, tB, 1) == np.arange(1, k + 1)[None, :]
        out[f"FA@{k}"] = np.full(n, k / J)
        out[f"SA@{k}"] = nz.sum(axis=1) / (2 * J)
        out[f"RA@{k}"] = exact.sum(axis=1) / (k * J)
        out[f"SRA@{k}"] = (exact & nz).sum(axis=1) / (2 * k * J)
    out["RC"] = np.zeros(n)
    out["PRA"] = np.full(n, 0.5)
    out["spearman"] = np.zeros(n)
    out["sign_agreement"] = np.where(_signed(B, sign_tol).any(axis=1), 0.5, np.nan)
    return out


def _mean_se(v: np.ndarray, n_patients: int) -> tuple[float, float]:
    """Mean of per-row values and its standard error over patients (rows are patient-major)."""
    per = v.reshape(n_patients, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a patient whose every row is undefined
        pm = np.nanmean(per, axis=1)
    pm = pm[np.isfinite(pm)]
    if not len(pm):
        return float("nan"), float("nan")
    se = float(pm.std(ddof=1) / np.sqrt(len(pm))) if len(pm) > 1 else float("nan")
    return float(pm.mean()), se


def shuffled_null(a, b, ks=KS, shuffles: int = SHUFFLES) -> dict[str, np.ndarray]:
    """Per-row metrics of attributions ``a`` against *other* patients' truths ``b`` (both (n, J, K)).

    Patient i's attributions are scored against the truth of patient (i - s) mod n for
    ``shuffles`` shifts s spread evenly over 1 .. n - 1, and the scores averaged per row. Returns
    arrays of length n * K (patient-major, as :func:`rows`); all NaN when n < 2.
    """
    a, b = _check_pair(a, b)
    if isinstance(shuffles, (bool, np.bool_)) or not isinstance(shuffles, (int, np.integer)) or shuffles < 1:
        raise ValueError(f"shuffles must be a positive integer, got {shuffles!r}")
    return _shuffled(a, b, _check_ks(ks, a.shape[1]), int(shuffles))


def _shuffled(a: np.ndarray, b: np.ndarray, ks, shuffles: int) -> dict[str, np.ndarray]:
    """:func:`shuffled_null` on arrays already checked."""
    n = a.shape[0]
    A = rows(a)
    if n < 2:
        return {m: np.full(len(A), np.nan) for m in row_metrics(A, rows(b), ks)}
    shifts = sorted({int(round(n * s / (shuffles + 1))) or 1 for s in range(1, shuffles + 1)} - {0, n})
    return _mean_of([row_metrics(A, rows(np.roll(b, s, axis=0)), ks) for s in shifts])


def class_shuffled_null(a, b, ks=KS) -> dict[str, np.ndarray]:
    """Per-row metrics of attributions ``a`` against the same patient's truths for *other* classes.

    Row (patient i, class c) of ``a`` is scored against the truth of (i, (c - s) mod K) for every
    shift s = 1 .. K - 1, and the scores averaged per row. Both (n, J, K); returns arrays of
    length n * K (patient-major, as :func:`rows`); all NaN when K < 3: with two classes, truths
    centred across classes are negatives of each other, so the other class's truth has the
    same magnitudes and the null would equal the value on every top-k and rank metric.
    """
    a, b = _check_pair(a, b)
    return _class_shuffled(a, b, _check_ks(ks, a.shape[1]))


def _class_shuffled(a: np.ndarray, b: np.ndarray, ks) -> dict[str, np.ndarray]:
    """:func:`class_shuffled_null` on arrays already checked."""
    K = a.shape[2]
    A = rows(a)
    if K < 3:
        return {m: np.full(len(A), np.nan) for m in row_metrics(A, rows(b), ks)}
    return _mean_of([row_metrics(A, rows(np.roll(b, s, axis=2)), ks) for s in range(1, K)])


def _mean_of(per: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-row mean over several scorings (NaN only where a row is undefined in all of them)."""
    return {m: _nanmean0(np.stack([d[m] for d in per])) for m in per[0]}


def agreement(a, b, ks=KS) -> dict[str, dict[str, float]]:
    """Every ground-truth metric of attributions ``a`` against truth ``b`` (both (n, J, K)).

    Both are compared as given (centre them across classes first when they are on a log-odds
    scale). Returns ``{metric: {"value", "se", "chance", "shuffled", "class_shuffled", "adjusted",
    "adjusted_se"}}``: the mean over (patient, class) rows and its standard error over patients;
    the uniform chance level (:func:`chance_levels`); the patient-shuffled null
    (:func:`shuffled_null`); the class-shuffled null (:func:`class_shuffled_null`, NaN with fewer
    than 3 classes); and the chance-adjusted agreement ``(value - null) / (1 - null)``, where
    ``null`` is the larger of the two nulls (see the module's design note; taking the larger of
    two noisy nulls makes it conservative, a few tenths of a standard error below 0 for
    attributions that know nothing), with its standard error over patients (from the per-patient
    differences with that null, so the null's own sampling error is included).

    Raises
    ------
    ValueError
        For arrays that are not real numbers of one shape (patients, columns, classes) with at
        least one patient and one class, non-finite values, or top-k sizes outside 1 .. columns.
    """
    return pooled_agreement([a], b, ks)


def pooled_agreement(runs, b, ks=KS) -> dict[str, dict[str, float]]:
    """:func:`agreement` of R independent runs of one explainer (a floor's null models), pooled.

    Each (patient, class) row's metrics and nulls are averaged over the runs, and the result is
    summarised as :func:`agreement` does, so that ``adjusted`` is computed from the ``value`` and
    nulls it is reported with. The standard errors add the spread between runs to the error
    over patients: ``se**2 = se_patients**2 + var(run means) / R`` (conservative: never below
    the error over patients, and counting that one run's score moves from one null model to the
    next). With one run this is :func:`agreement`.
    """
    if isinstance(runs, np.ndarray) or not isinstance(runs, (list, tuple)) or not runs:
        raise ValueError("runs must be a non-empty list of attribution arrays (patients, columns, classes)")
    checked = [_check_pair(a, b) for a in runs]
    b = checked[0][1]
    ks = _check_ks(ks, b.shape[1])
    n, R = b.shape[0], len(runs)
    B = rows(b)
    chance = chance_levels(B, ks)
    scored = [(row_metrics(rows(a), B, ks), _shuffled(a, b, ks, SHUFFLES), _class_shuffled(a, b, ks)) for a, _ in checked]
    out = {}
    for m in scored[0][0]:
        v_runs = np.stack([s[0][m] for s in scored])  # (R, rows)
        # each null over the same rows as the value, so that all average over the same patients
        nulls = [np.stack([np.where(np.isnan(s[0][m]), np.nan, s[i][m]) for s in scored]) for i in (1, 2)]
        v = _nanmean0(v_runs)
        value, se = _mean_se(v, n)
        means = [_mean_se(_nanmean0(x), n)[0] for x in nulls]
        adjusted = adjusted_se = np.nan
        if np.isfinite(means).any():
            i = int(np.nanargmax(means))
            zero = means[i]
            if zero < 1:
                adjusted = (value - zero) / (1.0 - zero)
                # the standard error of the per-patient differences, so the null's own noise counts
                adjusted_se = _mean_se(v - _nanmean0(nulls[i]), n)[1] / (1.0 - zero)
                if R > 1:
                    per_run = [_mean_se(v_runs[r] - nulls[i][r], n)[0] / (1.0 - zero) for r in range(R)]
                    adjusted_se = float(np.hypot(adjusted_se, np.std(per_run, ddof=1) / np.sqrt(R)))
        if R > 1:
            se = float(np.hypot(se, np.std([_mean_se(v_runs[r], n)[0] for r in range(R)], ddof=1) / np.sqrt(R)))
        out[m] = {"value": value, "se": se, "chance": _mean_se(chance[m], n)[0], "shuffled": means[0],
                  "class_shuffled": means[1], "adjusted": adjusted, "adjusted_se": adjusted_se}
    return out


def _nanmean0(x: np.ndarray) -> np.ndarray:
    """Mean over the first axis, NaN only where every entry is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def deletion_curve(view, Z: np.ndarray, attributions: np.ndarray, k_max: int = 10) -> np.ndarray:
    """Mean probability of each patient's predicted class as its top-k columns are blanked.

    Ground-truth free (Samek et al. 2017's region perturbation, "most relevant first"): the
    columns are ordered by their attribution toward the class the model predicts for the
    patient, and the first k of them set to not recorded, for k = 0 .. ``k_max``. Returns the
    curve, shape (k_max + 1,): a faithful explainer makes it fall fast (a low mean).
    """
    Z = np.asarray(Z, float)
    n, J = Z.shape
    p0 = view.proba_codes(Z)
    c = p0.argmax(axis=1)
    toward = attributions[np.arange(n), :, c]
    order = np.argsort(-toward, axis=1, kind="stable")[:, :k_max]
    ks = np.arange(k_max + 1)
    rows_ = np.repeat(Z[None, :, :], k_max + 1, axis=0)  # (k+1, n, J)
    for kk in ks[1:]:
        cols = order[:, :kk]
        rows_[kk, np.arange(n)[:, None], cols] = np.nan
    p = view.proba_codes(rows_.reshape(-1, J)).reshape(k_max + 1, n, -1)
    return p[:, np.arange(n), c].mean(axis=1)
