"""ml.sweep on Dask: --quick on 2 workers, the same table on 1, a killed worker, resuming a sweep.

Real LocalClusters with process workers run real tasks at ``--quick`` sizes; the tables are
compared exactly (every task is a pure function of its perturbation and seed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time

import pandas as pd
import pytest

pytest.importorskip("distributed")

from ml.cli.sweep import QUICK_ASSUMPTIONS, add_arguments, run  # noqa: E402
from ml.sweep.cluster import INSTALL_HINT  # noqa: E402
from ml.sweep.tasks import CONCLUSIONS  # noqa: E402

SUBSET = "@age_adult:location,@not_recorded"  # two of the --quick assumptions


def sweep(*argv: str) -> int:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return run(p.parse_args(["--quiet", *argv]))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert sweep("--quick", "--workers", "2", "--out", str(out)) == 0
    return out


def test_quick_sweep_covers_both_directions_and_writes_every_output(quick):
    table = pd.read_parquet(quick / "sweep.parquet")
    assert len(table) == 1 + 2 * QUICK_ASSUMPTIONS >= 17
    per = table[table["assumption"] != "baseline"].groupby("assumption")["direction"].apply(lambda s: sorted(s))
    assert len(per) == QUICK_ASSUMPTIONS and all(v == [-1, 1] for v in per)
    pd.testing.assert_frame_equal(pd.read_csv(quick / "sweep.csv"), table, check_exact=False, rtol=1e-12)
    assert len(list((quick / "tasks").glob("*.parquet"))) == len(table)
    for name in CONCLUSIONS:
        assert (quick / f"tornado_{name}.png").stat().st_size > 10_000
        assert table[name].notna().all()
    md = (quick / "sweep.md").read_text(encoding="utf-8")
    base = table.set_index("assumption").loc["baseline"]
    assert f"Baseline {base['oracle_accuracy']:.4f}" in md
    assert md.count("assumptions move it beyond the CI in neither direction") == len(CONCLUSIONS)
    assert "seconds" not in table  # timings differ between runs, so the table leaves them out


def test_one_worker_gives_the_same_rows(quick, tmp_path):
    assert sweep("--quick", "--assumptions", SUBSET, "--workers", "1", "--out", str(tmp_path)) == 0
    one = pd.read_parquet(tmp_path / "sweep.parquet")
    two = pd.read_parquet(quick / "sweep.parquet")
    two = two[two["assumption"].isin(["baseline", *SUBSET.split(",")])].reset_index(drop=True)
    assert len(one) == 5
    pd.testing.assert_frame_equal(one, two, check_exact=True)


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50) as lc, \
            Client(lc, set_as_default=False) as client:
        yield lc.scheduler_address, client


def test_a_killed_worker_loses_no_result(quick, cluster, tmp_path, capsys):
    address, client = cluster
    killed = []

    def kill_when_busy():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if any("pulmocalc-sweep" in str(k) for k in keys)]
            if busy and list((tmp_path / "tasks").glob("*.parquet")):
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_busy, daemon=True)
    watcher.start()
    assert sweep("--quick", "--assumptions", SUBSET, "--scheduler", address, "--out", str(tmp_path)) == 0
    watcher.join()
    assert killed, "no worker was busy to kill"
    got = pd.read_parquet(tmp_path / "sweep.parquet")
    ref = pd.read_parquet(quick / "sweep.parquet")
    ref = ref[ref["assumption"].isin(got["assumption"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ref, check_exact=True)
    assert "5 tasks run, 0 already done, 0 failed" in capsys.readouterr().out


def test_rerun_runs_only_the_missing_tasks(quick, cluster, tmp_path, capsys):
    address, _ = cluster
    out = tmp_path / "half"
    shutil.copytree(quick, out)
    files = sorted((out / "tasks").glob("*.parquet"))
    subset_keys = [f for f in files if f.name.startswith(("age_adult_location", "not_recorded"))]
    assert len(subset_keys) == 4
    for f in subset_keys[:2]:
        f.unlink()
    kept = {f.name: f.stat().st_mtime_ns for f in files if f.exists()}
    capsys.readouterr()
    assert sweep("--quick", "--scheduler", address, "--out", str(out)) == 0
    assert f"2 tasks run, {len(files) - 2} already done, 0 failed" in capsys.readouterr().out
    assert {f.name: f.stat().st_mtime_ns for f in files if f.name in kept} == kept  # finished files untouched
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), pd.read_parquet(quick / "sweep.parquet"), check_exact=True)
    # other settings in the same directory are refused, not mixed in
    with pytest.raises(ValueError, match="holds a sweep with other settings \\(seed\\)"):
        sweep("--quick", "--seed", "1", "--scheduler", address, "--out", str(out))


def test_without_dask_the_sweep_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ValueError) as exc:
        sweep("--quick", "--out", str(tmp_path))
    assert str(exc.value) == INSTALL_HINT and "pip install 'pulmocalc[distributed]'" in INSTALL_HINT
