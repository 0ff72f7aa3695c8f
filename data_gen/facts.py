"""The review's stated facts, checked on a generated cohort.

Every check reads only the generated patients (their observed columns, their label and their
latent subtypes) and the threshold the review states; none reads the knowledge base's numbers.
The knowledge base is used for nothing but the class names. This is what the benchmark report
prints under "Cohort fidelity", and ``tests/data_gen/test_paper_facts.py`` checks that every
fact holds on a generated cohort and that a doctored cohort makes a fact fail.

Criteria
--------
* "usually" / "most often": more than half of the class's recorded values.
* a stated size range ("nodules of 1-5 mm"): at least :data:`RANGE_SHARE` of the recorded
  sizes lie in it (the review gives ranges, not tails; 90% leaves room for the bounded
  distributions' tails without letting a shifted distribution pass).
* "about 60%": within :data:`ABOUT_TOLERANCE` (5 percentage points) of the stated share.
* "A is more common than B", "upper-zone predominance", "the most peripheral": the share is
  larger by more than :data:`Z_MARGIN` standard errors of the difference (a one-sided test at
  about 0.0005), so that a tie cannot pass by chance.

Research and teaching on synthetic data only; never a clinical device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .contract import LABEL
from .knowledge import Knowledge, load_knowledge

__all__ = ["check_paper_facts", "FACT_COLUMNS", "RANGE_SHARE", "ABOUT_TOLERANCE", "Z_MARGIN"]

FACT_COLUMNS = ("fact", "source", "figure", "criterion", "holds", "value", "n")
#: Share of recorded sizes that must fall in a range the review states.
RANGE_SHARE = 0.90
#: "about 60%" holds within this many percentage points (as a fraction).
ABOUT_TOLERANCE = 0.05
#: "more common than" needs a difference of more than this many standard errors.
Z_MARGIN = 3.29

_LATENT = ("latent_pattern", "latent_stage")
#: Short names of the classes in the facts' wording.
_SHORT = {"dystrophic": "Dystrophic", "metastatic": "MPC", "dpo_nodular": "Nodular DPO", "dpo_dendriform": "Dendriform DPO", "pam": "PAM"}


def _recorded(s: pd.Series) -> np.ndarray:
    return s.dropna().to_numpy(dtype=float)


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


def _greater(p1: float, n1: int, p2: float, n2: int, *, same_sample: bool = False) -> tuple[bool, float]:
    """(p1 exceeds p2 by more than Z_MARGIN standard errors of the difference, z).

    Two independent groups: var = p1 (1 - p1) / n1 + p2 (1 - p2) / n2. Two shares of one
    multinomial sample (``same_sample``, n1 == n2 == n): var = (p1 + p2 - (p1 - p2)^2) / n.
    """
    if not (n1 and n2) or not (math.isfinite(p1) and math.isfinite(p2)):
        return False, float("nan")
    if same_sample:
        se = math.sqrt(max(p1 + p2 - (p1 - p2) ** 2, 0.0) / n1)
    else:
        se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if se == 0:
        return p1 > p2, float("inf") if p1 > p2 else float("-inf") if p1 < p2 else 0.0
    z = (p1 - p2) / se
    return z > Z_MARGIN, z


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}%"


def check_paper_facts(cohort: pd.DataFrame, knowledge: Knowledge | str | None = None) -> pd.DataFrame:
    """Check what the review states against a generated cohort.

    Parameters
    ----------
    cohort : pandas.DataFrame
        A labelled cohort with its latent subtypes, as returned by
        ``generate_cohort(n, latent=True)`` under the default class mix (the frequency facts
        are about that mix; a cohort generated with ``counts`` or another ``prevalence`` fails
        them, as it should). Needs ``calcification_type``, ``latent_pattern`` and
        ``latent_stage``.
    knowledge : Knowledge or path, optional
        Only its class names are used; defaults to the shipped knowledge base.

    Returns
    -------
    pandas.DataFrame
        One row per fact with :data:`FACT_COLUMNS`: ``fact`` (what the review states, in
        short), ``source`` (the review's words and where), ``figure`` (what the cohort shows,
        in words), ``criterion`` (the test, with its threshold), ``holds`` (bool), ``value``
        (the number the criterion compares) and ``n`` (patients or values it rests on).

    Raises
    ------
    ValueError
        When the label or a needed latent column is missing.

    Examples
    --------
    >>> from data_gen import generate_cohort
    >>> facts = check_paper_facts(generate_cohort(100_000, random_state=3, latent=True))
    >>> bool(facts["holds"].all())
    True
    """
    kb = knowledge if isinstance(knowledge, Knowledge) else load_knowledge(knowledge)
    need = [LABEL, *_LATENT, "calcification_visible", "lesion_size_mm", "zone", "peripheral_predominance",
            "medial_posterior_predominance", "age_years"]
    missing = [c for c in need if c not in cohort.columns]
    if missing:
        raise ValueError(
            f"check_paper_facts needs the columns {missing}; generate the cohort with latent=True "
            "(the size and stage facts are about latent subtypes)"
        )
    if len(cohort) == 0:
        raise ValueError("check_paper_facts needs a non-empty cohort")
    labels = cohort[LABEL].astype(str).to_numpy()
    unknown = sorted(set(labels) - set(kb.class_names))
    if unknown:
        raise ValueError(f"unknown classes {unknown} in {LABEL}; expected {list(kb.class_names)}")
    groups = {k: cohort.loc[labels == k] for k in kb.class_names}
    rows: list[dict] = []

    def add(fact, source, figure, criterion, holds, value, n):
        rows.append({"fact": fact, "source": source, "figure": figure, "criterion": criterion,
                     "holds": bool(holds), "value": float(value), "n": int(n)})

    # ---- MPC: calcification visible in about 60% -----------------------------------------
    v = _recorded(groups["metastatic"]["calcification_visible"])
    rate = _share(v == 1)
    add(
        "MPC: calcification visible on CT in about 60%",
        "Table 1, MPC: \u201cCalcifications only in 60% of cases!\u201d; text: \u201cIn 40% of the cases, "
        "calcifications can be so minute that they do not show on the CT scans\u201d",
        f"{_pct(rate)} of {len(v):,} MPC patients",
        f"|share - 60%| <= {100 * ABOUT_TOLERANCE:g} pp",
        len(v) > 0 and abs(rate - 0.60) <= ABOUT_TOLERANCE,
        rate,
        len(v),
    )

    # ---- lesion sizes --------------------------------------------------------------------
    size = _recorded(groups["dystrophic"]["lesion_size_mm"])
    share = _share(size > 5)
    add(
        "Dystrophic: nodules usually > 5 mm",
        "Table 1, dystrophic: \u201cMultiple calcified nodules usually >5 mm size\u201d",
        f"{_pct(share)} of {len(size):,} recorded sizes > 5 mm (median {np.median(size) if len(size) else float('nan'):.1f} mm)",
        "share > 5 mm is above 50%",
        share > 0.5,
        share,
        len(size),
    )

    def size_range(k, rows_mask: Callable[[pd.DataFrame], pd.Series] | None, lo, hi, fact, source, what):
        g = groups[k]
        if rows_mask is not None:
            g = g.loc[rows_mask(g)]
        s = _recorded(g["lesion_size_mm"])
        sh = _share((s >= lo) & (s <= hi))
        add(
            fact,
            source,
            f"{_pct(sh)} of {len(s):,} {what} within {lo:g}\u2013{hi:g} mm",
            f"share within [{lo:g}, {hi:g}] mm >= {100 * RANGE_SHARE:g}%",
            len(s) > 0 and sh >= RANGE_SHARE,
            sh,
            len(s),
        )

    size_range(
        "metastatic",
        lambda g: g["latent_pattern"].astype("string") == "centrilobular_ggo",
        3, 10,
        "MPC centrilobular pattern: fluffy nodules of 3\u201310 mm",
        "Table 1, MPC: \u201cCentrilobular GGO, with numerous fluffy and poorly defined nodules measuring 3\u201310 mm\u201d",
        "MPC centrilobular-pattern sizes",
    )
    size_range(
        "dpo_nodular", None, 1, 5,
        "Nodular DPO: nodules of 1\u20135 mm",
        "Table 1, DPO nodular: \u201cDensely calcified, smooth, round nodules of 1\u20135 mm size\u201d",
        "nodular DPO sizes",
    )
    size_range(
        "dpo_dendriform", None, 1, 4,
        "Dendriform DPO: branching lines 1\u20134 mm wide",
        "Table 1, DPO dendriform: \u201cBranching lines of calcifications of 1\u20134 mm width\u201d",
        "dendriform DPO widths",
    )

    pam = groups["pam"]
    sand = pam.loc[pam["latent_stage"].astype("string") == "sandstorm"]
    s_sand = _recorded(sand["lesion_size_mm"])
    s_all = _recorded(pam["lesion_size_mm"])
    sh = _share(s_sand < 1)
    med = float(np.median(s_all)) if len(s_all) else float("nan")
    add(
        "PAM: micronodules < 1 mm",
        "Table 1, PAM: \u201cDiffuse micronodules of 0.01\u20131 mm\u201d; text: \u201cdiffuse micronodules of 0.01\u20130.1 mm in size\u201d",
        f"{_pct(sh)} of {len(s_sand):,} sandstorm-stage sizes < 1 mm; median over all {len(s_all):,} PAM sizes {med:.2f} mm",
        f"sandstorm stage: share < 1 mm >= {100 * RANGE_SHARE:g}%, and the median PAM size < 1 mm",
        len(s_sand) > 0 and sh >= RANGE_SHARE and med < 1,
        sh,
        len(s_sand),
    )

    # ---- zones ---------------------------------------------------------------------------
    zone_sources = {
        "dystrophic": ("upper", "Table 1, dystrophic, zone: \u201cUpper\u201d"),
        "metastatic": ("upper", "Table 1, MPC, zone: \u201cUpper Peripheral\u201d; text: \u201cThe upper lobes and the peripheral zones ... are more commonly affected with MPC\u201d"),
        "dpo_nodular": ("lower", "text: \u201cNodular DPO ... preferentially the lower lobes\u201d"),
        "dpo_dendriform": ("lower", "text: \u201cfine, dendritic, branching calcifications prominently in the lower lobes\u201d"),
        "pam": ("lower", "text: \u201ccalcifications usually starting and are more severe in the lower lobes\u201d"),
    }
    for k, (zone, source) in zone_sources.items():
        z = groups[k]["zone"].astype("string").dropna().to_numpy()
        n = len(z)
        levels = sorted(set(z))
        shares = {lv: _share(z == lv) for lv in levels}
        p = shares.get(zone, 0.0)
        others = {lv: q for lv, q in shares.items() if lv != zone}
        results = [_greater(p, n, q, n, same_sample=True) for q in others.values()]
        ok = n > 0 and bool(others) and all(r[0] for r in results)
        shown = ", ".join(f"{lv} {_pct(q)}" for lv, q in sorted(shares.items(), key=lambda kv: -kv[1]))
        add(
            f"{_SHORT.get(k, k)}: {zone}-zone predominance",
            source,
            f"zones of {n:,} patients: {shown}",
            f"{zone} is the most frequent zone, ahead of each other zone by > {Z_MARGIN:g} SE",
            ok,
            p,
            n,
        )

    def most_in_class(col, k, fact, source):
        rates = {}
        for c, g in groups.items():
            x = _recorded(g[col])
            rates[c] = (_share(x == 1), len(x))
        p, n = rates[k]
        results = [_greater(p, n, q, m) for c, (q, m) in rates.items() if c != k]
        ok = n > 0 and all(r[0] for r in results)
        runner = max(((c, q) for c, (q, _) in rates.items() if c != k), key=lambda cq: cq[1])
        add(
            fact,
            source,
            f"{_pct(p)} of {n:,} {k} patients; next highest {runner[0]} {_pct(runner[1])}",
            f"higher in {k} than in every other class by > {Z_MARGIN:g} SE",
            ok,
            p,
            n,
        )

    most_in_class(
        "peripheral_predominance", "metastatic",
        "MPC: peripheral predominance",
        "Table 1, MPC, zone: \u201cUpper Peripheral\u201d",
    )
    most_in_class(
        "medial_posterior_predominance", "pam",
        "PAM: medial and posterior predominance",
        "Table 1, PAM, zone: \u201cMedial Posterior\u201d; text: \u201cmainly in the medial and posterior parts\u201d",
    )

    # ---- frequencies ---------------------------------------------------------------------
    n_all = len(cohort)
    freq = {k: len(g) / n_all for k, g in groups.items()}
    shown = ", ".join(f"{k} {_pct(f)}" for k, f in sorted(freq.items(), key=lambda kv: -kv[1]))
    res = [_greater(freq["dystrophic"], n_all, f, n_all, same_sample=True) for k, f in freq.items() if k != "dystrophic"]
    add(
        "Dystrophic is the most common type",
        "text: \u201cDystrophic calcifications are the most common cause of diffuse pulmonary calcifications.\u201d",
        f"class mix of {n_all:,} patients: {shown}",
        f"dystrophic more frequent than every other class by > {Z_MARGIN:g} SE",
        all(r[0] for r in res),
        freq["dystrophic"],
        n_all,
    )
    ok, _ = _greater(freq["dpo_nodular"], n_all, freq["dpo_dendriform"], n_all, same_sample=True)
    add(
        "Nodular DPO is more common than dendriform DPO",
        "text: \u201cNodular DPO is the more common type.\u201d",
        f"nodular {_pct(freq['dpo_nodular'])}, dendriform {_pct(freq['dpo_dendriform'])}",
        f"nodular more frequent than dendriform by > {Z_MARGIN:g} SE",
        ok,
        freq["dpo_nodular"] - freq["dpo_dendriform"],
        n_all,
    )
    res = [_greater(f, n_all, freq["pam"], n_all, same_sample=True) for k, f in freq.items() if k != "pam"]
    add(
        "PAM is the rarest type",
        "text: \u201cPAM is a rare autosomal recessive genetic disorder\u201d",
        f"PAM {_pct(freq['pam'])} of {n_all:,} patients",
        f"every other class more frequent than PAM by > {Z_MARGIN:g} SE",
        all(r[0] for r in res),
        freq["pam"],
        n_all,
    )

    # ---- PAM stage ages ------------------------------------------------------------------
    age = _recorded(sand["age_years"])
    sh = _share((age >= 10) & (age <= 20))
    add(
        "PAM sandstorm stage: usually at ages 10\u201320",
        "Table 1, PAM: \u201cSecond: Classic sandpaper/sandstorm appearance Usually in ages 10\u201320\u201d",
        f"{_pct(sh)} of {len(age):,} sandstorm-stage PAM patients aged 10\u201320 years",
        "share aged 10\u201320 years is above 50%",
        len(age) > 0 and sh > 0.5,
        sh,
        len(age),
    )
    return pd.DataFrame(rows, columns=list(FACT_COLUMNS))
