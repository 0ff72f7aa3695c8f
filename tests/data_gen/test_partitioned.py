"""data_gen.partitioned: a partitioned Parquet dataset equals generate_cohort row for row.

One dataset is written in this process, one through ``pulmocalc generate --partitions`` on a
2-worker Dask LocalCluster; both are read back with pandas, Dask and polars.
"""

from __future__ import annotations


import pandas as pd
import pytest

from data_gen import BLOCK_SIZE, generate_cohort
from data_gen.partitioned import generate_partitioned, partition_bounds

N = 2 * BLOCK_SIZE + 4_321  # partitions cut through blocks
SEED = 7


@pytest.fixture(scope="module")
def whole():
    return generate_cohort(N, random_state=SEED).reset_index(drop=True)


def test_bounds_cover_every_row_once():
    b = partition_bounds(10, 3)
    assert b == [(0, 3), (3, 6), (6, 10)]
    with pytest.raises(ValueError, match=r"partitions \(11\) must not exceed the number of patients \(10\)"):
        partition_bounds(10, 11)
    with pytest.raises(ValueError, match="partitions must be at least 1"):
        partition_bounds(10, 0)


def test_in_process_dataset_equals_the_cohort(whole, tmp_path):
    pytest.importorskip("pyarrow")
    res = generate_partitioned(N, tmp_path, 3, random_state=SEED)
    assert [r["rows"] for r in res] == [b - a for a, b in partition_bounds(N, 3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_pulmocalc-dataset.json", "part-00000.parquet", "part-00001.parquet",
                                                          "part-00002.parquet"]
    # the record of the dataset is skipped by Parquet readers (its name starts with "_")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path), whole, check_exact=True)
    with pytest.raises(ValueError, match="already holds 3 partition files"):
        generate_partitioned(N, tmp_path, 3, random_state=SEED)
    with pytest.raises(ValueError, match="one seed for every partition"):
        generate_partitioned(N, tmp_path / "x", 3, random_state=None)


def test_an_interrupted_run_is_resumed_into_the_same_dataset(whole, tmp_path):
    pytest.importorskip("pyarrow")
    import json

    from data_gen.partitioned import MANIFEST

    class Stop(Exception):
        pass

    def stop_after_two(result):
        if result["index"] == 1:
            raise Stop  # as a Ctrl-C after the second partition

    with pytest.raises(Stop):
        generate_partitioned(N, tmp_path, 4, random_state=SEED, on_done=stop_after_two)
    assert sorted(p.name for p in tmp_path.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    assert json.loads((tmp_path / MANIFEST).read_text())["complete"] is False
    before = (tmp_path / "part-00000.parquet").stat().st_mtime_ns
    # another dataset cannot be resumed here: the first setting that differs is named
    for bad, message in [({"random_state": SEED + 1}, "random_state = 7, this run 8"),
                         ({"latent": True}, "cohort_options"),
                         ({"n_": N + 1}, "n = ")]:
        kw = {"random_state": SEED, **bad}
        n = N + 1 if kw.pop("n_", None) else N
        with pytest.raises(ValueError, match=message):
            generate_partitioned(n, tmp_path, 4, resume=True, **kw)
    res = generate_partitioned(N, tmp_path, 4, random_state=SEED, resume=True)
    assert [bool(r.get("resumed")) for r in res] == [True, True, False, False]
    assert (tmp_path / "part-00000.parquet").stat().st_mtime_ns == before  # kept, not rewritten
    assert json.loads((tmp_path / MANIFEST).read_text())["complete"] is True
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path), whole, check_exact=True)
    with pytest.raises(ValueError, match="cannot resume .* no _pulmocalc-dataset.json"):
        generate_partitioned(N, tmp_path / "empty", 4, random_state=SEED, resume=True)


def test_small_slices_inside_a_partition_change_nothing(whole, tmp_path):
    pytest.importorskip("pyarrow")
    from data_gen.partitioned import write_partition

    write_partition(tmp_path, N, 2, 1, random_state=SEED, chunk_rows=10_000)
    a, b = partition_bounds(N, 2)[1]
    got = pd.read_parquet(tmp_path / "part-00001.parquet")
    pd.testing.assert_frame_equal(got, whole.iloc[a:b].reset_index(drop=True), check_exact=True)


def test_cli_on_two_dask_workers_reads_back_with_pandas_dask_and_polars(whole, tmp_path, capsys):
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    import polars as pl

    from ml.cli import main

    out = tmp_path / "cohort"
    assert main(["generate", "--n", str(N), "--out", f"{out}/", "--partitions", "7", "--workers", "2", "--seed", str(SEED)]) == 0
    assert f"{N:,} patients in 7 partitions" in capsys.readouterr().out
    assert len(list(out.glob("part-*.parquet"))) == 7 and not list(out.glob(".*"))
    pd.testing.assert_frame_equal(pd.read_parquet(out), whole, check_exact=True)
    via_dask = dd.read_parquet(str(out)).compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(via_dask, whole, check_exact=True, check_dtype=False, check_categorical=False)
    via_polars = pl.read_parquet(f"{out}/*.parquet")
    assert via_polars.height == N and via_polars.columns == list(whole.columns)
    for col in ("age_years", "calcification_type", "on_dialysis", "zone"):
        expected = whole[col].astype(object).where(whole[col].notna(), None).tolist()
        assert via_polars[col].cast(pl.String if col in ("calcification_type", "zone") else via_polars[col].dtype).to_list() == expected
    # --resume without --seed takes the recorded one; one partition lost is written again, the rest kept
    (out / "part-00003.parquet").unlink()
    assert main(["generate", "--n", str(N), "--out", f"{out}/", "--partitions", "7", "--workers", "2", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"(seed {SEED})" in printed and "6 kept from the interrupted run" in printed, printed
    pd.testing.assert_frame_equal(pd.read_parquet(out), whole, check_exact=True)
