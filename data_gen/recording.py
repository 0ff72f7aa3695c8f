"""Recording regimes: which of a patient's values end up written down.

The knowledge base describes a patient's *complete record*: every column's value, and for a few
columns a structural "not recorded" (no SLC34A2 test, no bone scan, no discrete lesion to
measure). A recording regime then decides which recorded values a source actually reports.
Its one rule keeps the oracle exact: **the chance that a value is reported depends only on that
column and its own value** (a present finding is mentioned more often than an absent one), never
on the class, the latent cell or the other columns. Within a cell every column therefore keeps
its own factor, P(reported value | cell) = P(value | cell) · (1 - missing) · rate(value) and
P(not reported | cell) = missing + (1 - missing) · Σ_v P(v | cell) · (1 - rate(v)), and the
oracle stays a sum over cells (:mod:`data_gen.oracle`).

Three kinds of regime:

* ``"complete"`` (default): every recorded value is reported (rate 1), today's cohorts.
* a number ``q`` in (0, 1]: missing completely at random, every value reported with
  probability ``q`` whatever it is.
* a name declared in the knowledge base's ``[recording.<name>]`` (the shipped one is
  ``"case_report"``, estimated from the project's published case reports,
  :func:`data_gen.published.estimate_recording_rates`).
* a mixture, ``[(regime, weight), ...]``: each patient is reported under one component drawn
  with its weight, independently of the class (how the shipped model's training cohort mixes
  complete records, case reports and several MCAR rates). The component is one more latent
  variable, independent of the class and the cell, so the oracle is exact here too: it sums
  the per-component likelihoods with their weights.

Seeding: the sampler masks with its own random stream (one ``Generator`` per block of rows,
separate from the streams that draw the values), so a cohort drawn under any regime holds the
same patients as the complete cohort of the same seed, with some values blanked, and stays
chunk- and row-range-invariant.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .knowledge import Knowledge, Source, recording_value_keys

__all__ = ["RecordingRegime", "RecordingMixture", "resolve_recording", "blank_evidence", "RECORDING_BUILTINS"]

RECORDING_BUILTINS = ("complete", "mcar")


@dataclass(frozen=True, eq=False)
class RecordingRegime:
    """A compiled recording regime: the reporting rate of every column's every value.

    Attributes
    ----------
    name : str
        ``"complete"``, ``"mcar(q)"`` or the knowledge base's regime name.
    binary : numpy.ndarray, shape (n_binary, 2)
        Rate when the value is 1 (column 0) and when it is 0 (column 1), in the order of
        ``Knowledge.cells.binary``.
    categorical : tuple of numpy.ndarray
        Per categorical column, the rate of each level (``Knowledge.cells.cat_levels``).
    continuous : numpy.ndarray, shape (n_continuous, 2)
        Rate of a positive value (column 0) and of an exact zero (column 1).
    source : Source or None
        Where the rates come from (``None`` for the built-in regimes).
    knowledge_sha256 : str or None
        The knowledge base the regime was compiled for; a regime is refused by another one
        (its arrays follow that knowledge base's column order). None for a hand-built regime,
        which is then checked by shape and range only.
    """

    name: str
    binary: np.ndarray
    categorical: tuple[np.ndarray, ...]
    continuous: np.ndarray
    source: Source | None = None
    description: str = ""
    knowledge_sha256: str | None = None

    @property
    def is_complete(self) -> bool:
        """True when every value is always reported (the knowledge base's own cohorts)."""
        return bool(
            (self.binary == 1).all() and all((c == 1).all() for c in self.categorical) and (self.continuous == 1).all()
        )

    def rates(self, knowledge: Knowledge) -> dict[str, dict[str, float]]:
        """The rates as ``{column: {value: rate}}`` in the contract's column order."""
        t = knowledge.cells
        out = {}
        for j, col in enumerate(t.binary):
            out[col] = {"present": float(self.binary[j, 0]), "absent": float(self.binary[j, 1])}
        for j, col in enumerate(t.categorical):
            out[col] = dict(zip(t.cat_levels[j], map(float, self.categorical[j])))
        for j, col in enumerate(t.continuous):
            out[col] = {"positive": float(self.continuous[j, 0]), "zero": float(self.continuous[j, 1])}
        return {c: out[c] for c in knowledge.column_names}

    def __repr__(self) -> str:
        return f"RecordingRegime({self.name!r})"


@dataclass(frozen=True, eq=False)
class RecordingMixture:
    """Each patient reported under one of ``components``, drawn with ``weights`` (sum 1)."""

    components: tuple[RecordingRegime, ...]
    weights: np.ndarray
    spec: tuple = ()

    @property
    def name(self) -> str:
        return "mixture(" + ", ".join(f"{c.name}: {w:g}" for c, w in zip(self.components, self.weights)) + ")"

    @property
    def is_complete(self) -> bool:
        return all(c.is_complete for c in self.components)

    def __repr__(self) -> str:
        return f"RecordingMixture({self.name!r})"


def _uniform(kb: Knowledge, q: float, name: str) -> RecordingRegime:
    t = kb.cells
    return RecordingRegime(
        name=name,
        binary=np.full((len(t.binary), 2), q),
        categorical=tuple(np.full(len(lv), q) for lv in t.cat_levels),
        continuous=np.full((len(t.continuous), 2), q),
        knowledge_sha256=kb.sha256,
    )


def _check_regime(regime: RecordingRegime, kb: Knowledge) -> RecordingRegime:
    """A regime object given by the caller: for this knowledge base, with rates in [0, 1]."""
    t = kb.cells
    if regime.knowledge_sha256 is not None and regime.knowledge_sha256 != kb.sha256:
        raise ValueError(
            f"recording regime {regime.name!r} was compiled for knowledge base {regime.knowledge_sha256[:12]}, "
            f"not for this one ({kb.sha256[:12]}); pass its name or rates to compile it for this knowledge base"
        )
    shapes_ok = (
        np.shape(regime.binary) == (len(t.binary), 2)
        and np.shape(regime.continuous) == (len(t.continuous), 2)
        and [np.shape(c) for c in regime.categorical] == [(len(lv),) for lv in t.cat_levels]
    )
    if not shapes_ok:
        raise ValueError(f"recording regime {regime.name!r} was compiled for a knowledge base with other columns")
    named = (
        [(c, v, regime.binary[j, i]) for j, c in enumerate(t.binary) for i, v in enumerate(("present", "absent"))]
        + [(c, lv, regime.categorical[j][i]) for j, c in enumerate(t.categorical) for i, lv in enumerate(t.cat_levels[j])]
        + [(c, v, regime.continuous[j, i]) for j, c in enumerate(t.continuous) for i, v in enumerate(("positive", "zero"))]
    )
    for col, value, rate in named:
        if not (np.isfinite(rate) and 0.0 <= rate <= 1.0):
            raise ValueError(
                f"recording regime {regime.name!r}: the rate of {col} = {value} is {rate!r}; a rate is a probability in [0, 1]"
            )
    return regime


_RESOLVED: dict = {}


def resolve_recording(recording, knowledge: Knowledge) -> RecordingRegime:
    """Turn a ``recording=`` argument into a compiled :class:`RecordingRegime`.

    Parameters
    ----------
    recording : None, "complete", float in (0, 1], str, RecordingRegime or list of pairs
        ``None`` or ``"complete"``: every value reported. A number ``q``: each value reported
        with probability ``q`` (missing completely at random). A name: a regime declared in the
        knowledge base's ``[recording]`` tables (``"case_report"`` in the shipped one). A list
        of ``(regime, weight)`` pairs with positive weights summing to 1: a mixture.
    knowledge : Knowledge

    The compiled regime of a name or number is cached per knowledge base (the same object
    each time), so the oracle's tables for it are built once per process.

    Raises
    ------
    ValueError
        For a number outside (0, 1], an unknown name (the message lists the known ones) or a
        regime compiled for a knowledge base with other columns.
    """
    key = _cache_key(recording)
    if key is None:
        return _resolve(recording, knowledge)
    # the same object for the same knowledge base and argument, so that the oracle's tables
    # (cached by the regime's identity) are built once per process, not once per call
    key = (id(knowledge), knowledge.sha256, key)
    hit = _RESOLVED.get(key)
    if hit is None or hit[0] is not knowledge:
        if len(_RESOLVED) >= 64:
            _RESOLVED.pop(next(iter(_RESOLVED)))
        hit = _RESOLVED[key] = (knowledge, _resolve(recording, knowledge))
    return hit[1]


def _cache_key(recording) -> str | None:
    """A key for names, numbers and lists of (name or number, weight) pairs; None otherwise.

    The repr, not the values: True == 1 and 1 == 1.0 would share an entry, and a bool must stay
    refused however often 1 was asked for.
    """
    def plain(x) -> bool:
        return x is None or isinstance(x, (str, int, float, np.floating, np.integer))

    if plain(recording):
        return repr(recording)
    if isinstance(recording, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and all(plain(v) for v in p) for p in recording
    ):
        return repr([tuple(p) for p in recording])
    return None


def _resolve(recording, knowledge: Knowledge) -> RecordingRegime:
    """The uncached compilation behind :func:`resolve_recording`."""
    kb = knowledge
    if isinstance(recording, RecordingMixture):
        for c in recording.components:
            _check_regime(c, kb)
        return recording
    if isinstance(recording, (list, tuple)) and not isinstance(recording, str):
        return _mixture(recording, kb)
    if recording is None or (isinstance(recording, str) and recording == "complete"):
        return _uniform(kb, 1.0, "complete")
    if isinstance(recording, RecordingRegime):
        return _check_regime(recording, kb)
    if isinstance(recording, numbers.Real) and not isinstance(recording, bool):
        q = float(recording)
        if not (0.0 < q <= 1.0):
            raise ValueError(f"recording as a number is the probability that a value is reported, in (0, 1]; got {recording!r}")
        return _uniform(kb, q, "complete" if q == 1.0 else f"mcar({q:g})")
    if isinstance(recording, str):
        decl = kb.recording.get(recording)
        if decl is None:
            known = ["complete", "a number in (0, 1] (missing completely at random)"] + [repr(k) for k in kb.recording]
            raise ValueError(f"unknown recording regime {recording!r}; expected one of: {', '.join(known)}")
        t = kb.cells
        return RecordingRegime(
            name=decl.name,
            binary=np.array([[decl.rates[c]["present"], decl.rates[c]["absent"]] for c in t.binary]).reshape(-1, 2),
            categorical=tuple(np.array([decl.rates[c][lv] for lv in recording_value_keys(kb.columns[c])]) for c in t.categorical),
            continuous=np.array([[decl.rates[c]["positive"], decl.rates[c]["zero"]] for c in t.continuous]).reshape(-1, 2),
            source=decl.source,
            description=decl.description,
            knowledge_sha256=kb.sha256,
        )
    raise ValueError(
        f"recording must be None, 'complete', a number in (0, 1], a regime name or a RecordingRegime; got {recording!r}"
    )


def _mixture(pairs, kb: Knowledge) -> RecordingMixture | RecordingRegime:
    comps, weights = [], []
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise ValueError(f"a recording mixture is a list of (regime, weight) pairs; item {i} is {pair!r}")
        reg, w = pair
        if isinstance(reg, (list, tuple, RecordingMixture)):
            raise ValueError(f"a recording mixture's components must be single regimes; item {i} is {reg!r}")
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (0 < float(w) <= 1):
            raise ValueError(f"the weight of mixture item {i} ({reg!r}) must be a number in (0, 1], got {w!r}")
        comps.append(resolve_recording(reg, kb))
        weights.append(float(w))
    if not comps:
        raise ValueError("a recording mixture needs at least one (regime, weight) pair")
    total = sum(weights)
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"the weights of a recording mixture must sum to 1, got {total:.6g} from {weights}")
    if len(comps) == 1:
        return comps[0]
    return RecordingMixture(tuple(comps), np.asarray(weights), tuple((c.name, w) for c, w in zip(comps, weights)))


# --------------------------------------------------------------------------------------------
# Probabilities of a column's reported state within each cell (read by the oracle)
# --------------------------------------------------------------------------------------------
def binary_state_probs(p: np.ndarray, miss: np.ndarray, rate: np.ndarray, model_missing: bool = True) -> np.ndarray:
    """(3, C) P(reported 1), P(reported 0), P(not reported) of a binary column in each cell.

    ``p`` is P(value = 1 | cell), ``miss`` the structural missingness, ``rate`` the pair
    (rate if 1, rate if 0). With ``model_missing=False`` missingness is ignored: a reported
    value contributes P(value) and "not reported" contributes 1.
    """
    if not model_missing:
        return np.vstack([p, 1 - p, np.ones_like(p)])
    keep = 1 - miss
    r1, r0 = rate
    return np.vstack([p * keep * r1, (1 - p) * keep * r0, miss + keep * (p * (1 - r1) + (1 - p) * (1 - r0))])


def _reported_given_value(miss, rate, model_missing: bool) -> np.ndarray:
    """(3 states, 2 values, C): P(reported state | true value, cell) for a binary column.

    Values in the order (1, 0), states in the order (reported 1, reported 0, not reported).
    """
    C = len(miss)
    out = np.zeros((3, 2, C))
    if not model_missing:
        out[0, 0] = out[1, 1] = 1.0
        out[2] = 1.0
        return out
    keep = 1 - miss
    for v in range(2):
        out[v, v] = keep * rate[v]
        out[2, v] = miss + keep * (1 - rate[v])
    return out


def child_state_probs(
    pp, pmiss, prate, g1, g0, cmiss, crate, model_missing: bool = True, child_model_missing: bool | None = None
) -> np.ndarray:
    """(4, 3, C) P(child state | parent state, cell) of a parent-conditioned binary column.

    Parent states: reported 1, reported 0, not reported, and *unknown* (the parent is summed out
    altogether, as in a Shapley game where it is not a player of the coalition). Child states:
    reported 1, reported 0, not reported. ``pp`` is P(parent = 1 | cell); ``g1``/``g0`` are
    P(child = 1 | parent = 1 / 0, cell). Because a regime's rates depend on the value, a parent
    that is not reported is evidence about its value, and so about the child's; the rows use
    the exact joint P(parent state, child state) / P(parent state). ``child_model_missing``
    (default: ``model_missing``) sets the child's own mode apart, for a child that was measured
    on purpose (:func:`data_gen.oracle_log_likelihood`'s ``measured=``).
    """
    rp = _reported_given_value(pmiss, prate, model_missing)  # (3, 2, C)
    rc = _reported_given_value(cmiss, crate, model_missing if child_model_missing is None else child_model_missing)
    pv = np.stack([pp, 1 - pp])  # (2, C) parent value
    cv = np.stack([np.stack([g1, 1 - g1]), np.stack([g0, 1 - g0])])  # (parent v, child v, C)
    child_given_pv = np.einsum("vwc,swc->vsc", cv, rc)  # (parent value, child state, C)
    joint = np.einsum("vc,pvc,vsc->psc", pv, rp, child_given_pv)  # (parent state, child state, C)
    marg = np.einsum("vc,vsc->sc", pv, child_given_pv)  # (child state, C)
    # P(parent state); under missing="ignore" the "not reported" row sums the parent out, so
    # its row is the marginal (the child's states do not sum to 1 there: NaN contributes 1)
    p_state = np.einsum("vc,pvc->pc", pv, rp)[:, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = np.where(p_state > 0, joint / np.where(p_state > 0, p_state, 1.0), 0.0)
    return np.concatenate([cond, marg[None]], axis=0)


def categorical_state_probs(probs: np.ndarray, miss: np.ndarray, rate: np.ndarray, model_missing: bool = True) -> np.ndarray:
    """(L + 1, C) P(reported level l), then P(not reported), of a categorical column."""
    probs = np.asarray(probs)  # (C, L)
    if not model_missing:
        return np.vstack([probs.T, np.ones(probs.shape[0])])
    keep = 1 - miss
    rep = probs.T * keep[None, :] * rate[:, None]
    return np.vstack([rep, miss + keep * (probs * (1 - rate)[None, :]).sum(axis=1)])


def continuous_state_probs(zero: np.ndarray, miss: np.ndarray, rate: np.ndarray, model_missing: bool = True):
    """Factors of a continuous column beside its density, per parameter set.

    Returns ``(positive, zero, missing)``: the factor a reported positive value multiplies its
    density by ((1 - missing) · rate), the probability of a reported exact zero and of "not
    reported". ``zero`` is the point mass at 0 (0 for a normal column).
    """
    zero = np.asarray(zero, dtype=float)
    if not model_missing:
        return np.ones_like(miss), zero, np.ones_like(miss)
    keep = 1 - miss
    r_pos, r_zero = rate
    return keep * r_pos, zero * keep * r_zero, miss + keep * ((1 - zero) * (1 - r_pos) + zero * (1 - r_zero))


def blank_evidence(knowledge: Knowledge, recording=None):
    """The weight of evidence of a blank: centred log P(not reported | class), per column.

    Returns a (columns x classes) ``pandas.DataFrame`` in nats. A row of zeros means that in this
    knowledge base and regime "not recorded" is equally likely under every class, so a blank is
    no reason for or against any diagnosis; a nonzero row marks a blank that is evidence (an
    SLC34A2 test that was not done, a lesion size absent because there are no discrete lesions,
    or, under the case-report regime, a finding that reports rarely leave out when present).
    The latent cells of each class are summed out (the blank's own marginal evidence).
    """
    import pandas as pd

    regime = resolve_recording(recording, knowledge)
    if isinstance(regime, RecordingMixture):
        raise ValueError("blank_evidence needs a single recording regime, not a mixture")
    t = knowledge.cells
    pi = t.class_matrix()
    pm = t.p_marginal()
    rows = {}
    for j, col in enumerate(t.binary):
        rows[col] = binary_state_probs(pm[j], t.binary_missing[j], regime.binary[j])[2] @ pi
    for j, col in enumerate(t.categorical):
        rows[col] = categorical_state_probs(t.cat_probs[j], t.cat_missing[j], regime.categorical[j])[-1] @ pi
    for j, col in enumerate(t.continuous):
        zero = t.cont_params[j].get("zero", np.zeros(t.n_cells))
        rows[col] = continuous_state_probs(zero, t.cont_missing[j], regime.continuous[j])[2] @ pi
    with np.errstate(divide="ignore"):
        logs = np.log(np.array([rows[c] for c in knowledge.column_names]))
    return pd.DataFrame(logs - logs.mean(axis=1, keepdims=True), index=list(knowledge.column_names), columns=list(knowledge.class_names))
