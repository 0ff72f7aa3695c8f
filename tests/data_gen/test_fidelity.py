"""data_gen.fidelity: observed frequencies against those the knowledge base implies."""

from __future__ import annotations

import io
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from data_gen import fidelity_table, generate_cohort, iter_cohort
from data_gen.fidelity import FIDELITY_COLUMNS, FidelityTally

SEED = 424242
N = 120_000
# Family-wise error rate of the "no row deviates" check over all rows of the table.
FAMILY_ALPHA = 0.001


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(N, random_state=SEED)


@pytest.fixture(scope="module")
def table(cohort):
    return fidelity_table(cohort)


def _row(table, cls, column, level="1"):
    sel = table[(table["class"] == cls) & (table["column"] == column) & (table["level"] == level)]
    assert len(sel) == 1, (cls, column, level)
    return sel.iloc[0]


def test_one_row_per_class_column_and_level(kb, table):
    n_binary = sum(s.kind == "binary" for s in kb.columns.values())
    n_levels = sum(len(s.levels) for s in kb.columns.values() if s.kind == "categorical")
    assert tuple(table.columns) == FIDELITY_COLUMNS
    assert len(table) == len(kb.class_names) * (n_binary + n_levels)
    assert not table.duplicated(["class", "column", "level"]).any()
    # sorted by |z|, largest first, with NaN (never recorded) last
    z = table["z"].abs().to_numpy()
    finite = z[~np.isnan(z)]
    assert (np.diff(finite) <= 0).all()


def test_generated_cohort_deviates_only_by_sampling_error(table):
    random_rows = table[table["se"] > 0]
    m = len(random_rows)
    # Bonferroni: with m two-sided tests at alpha / m each, the chance that any |z| exceeds this
    # bound on a faithful cohort is at most FAMILY_ALPHA (about 4.6 for ~240 rows)
    bound = NormalDist().inv_cdf(1 - FAMILY_ALPHA / (2 * m))
    assert random_rows["z"].abs().max() < bound
    # mostly small: about 95% of |z| below 2 if the cohort follows the knowledge base
    assert (random_rows["z"].abs() <= 2).mean() >= 0.9
    # frequencies the knowledge base makes certain (e.g. no SLC34A2 variant outside PAM) are exact
    certain = table[table["se"] == 0]
    assert len(certain) > 0
    assert (certain["z"] == 0).all()


def test_expected_marginalizes_gates_and_parent_columns(kb, table):
    dys = kb.classes["dystrophic"]
    p = dys.columns["calcified_nodules"].params["p"].value
    vis = dict(zip(*next((f.levels, f.probs) for f in dys.factors if f.name == "visibility")))
    # the finding is forced to 0 where calcification is not visible
    assert _row(table, "dystrophic", "calcified_nodules")["expected"] == pytest.approx(p * vis["visible"])

    met = kb.classes["metastatic"]
    pattern = dict(zip(*next((f.levels, f.probs) for f in met.factors if f.name == "pattern")))
    p_cgo = sum(pattern[lv] * met.columns["centrilobular_ggo"].params["p"].values[lv] for lv in pattern)
    given = met.columns["ground_glass_opacity"].params["p"].values
    expected = p_cgo * given["1"] + (1 - p_cgo) * given["0"]
    assert _row(table, "metastatic", "ground_glass_opacity")["expected"] == pytest.approx(expected)

    zone = met.columns["zone"].params["probs"].value
    for level, prob in zone.items():
        assert _row(table, "metastatic", "zone", level)["expected"] == pytest.approx(prob)


def test_observed_counts_only_recorded_values(cohort):
    df = cohort.copy()
    col = "calcified_nodules"
    mask = np.zeros(len(df), dtype=bool)
    mask[::2] = True
    df.loc[mask, col] = pd.NA
    before = _row(fidelity_table(cohort), "dystrophic", col)
    after = _row(fidelity_table(df), "dystrophic", col)
    dys = (cohort["calcification_type"] == "dystrophic").to_numpy()
    kept = cohort.loc[dys & ~mask, col]
    assert after["n_recorded"] == kept.notna().sum() < before["n_recorded"]
    assert after["observed"] == pytest.approx(kept.dropna().astype(float).mean())
    assert after["expected"] == before["expected"]


def test_a_flipped_column_gives_a_huge_z(cohort):
    df = cohort.copy()
    df["lymph_node_calcification"] = 1 - df["lymph_node_calcification"]
    t = fidelity_table(df)
    flipped = t[t["column"] == "lymph_node_calcification"]
    # far beyond any sampling error (the Bonferroni bound is under 5), even in the class whose
    # rate is nearest 0.5, where flipping moves the frequency least
    assert (flipped["z"].abs() > 10).all()
    assert flipped["z"].abs().max() > 100
    assert t.iloc[0]["column"] == "lymph_node_calcification"


def test_a_certain_frequency_violated_gives_infinite_z(cohort):
    df = cohort.copy()
    first_dys = np.flatnonzero((df["calcification_type"] == "dystrophic").to_numpy())[0]
    df.loc[df.index[first_dys], "slc34a2_variant"] = 1
    row = _row(fidelity_table(df), "dystrophic", "slc34a2_variant")
    assert row["expected"] == 0 and row["z"] == np.inf


def test_chunks_add_up_to_the_whole(table):
    tally = FidelityTally()
    for chunk in iter_cohort(N, chunk_size=25_000, random_state=SEED):
        tally.add(chunk)
    assert int(tally.class_counts.sum()) == N
    pd.testing.assert_frame_equal(tally.table(), table)


def test_a_cohort_read_back_from_csv_gives_the_same_table(cohort, table):
    back = pd.read_csv(io.StringIO(cohort.iloc[:20_000].to_csv(index=False)))
    pd.testing.assert_frame_equal(fidelity_table(back), fidelity_table(cohort.iloc[:20_000]))


def test_absent_classes_are_left_out(kb):
    df = generate_cohort(counts={"pam": 500, "metastatic": 300}, random_state=1)
    assert set(fidelity_table(df)["class"]) == {"pam", "metastatic"}


def test_a_frame_without_label_is_refused(cohort):
    with pytest.raises(ValueError, match="calcification_type"):
        fidelity_table(cohort.drop(columns="calcification_type"))
