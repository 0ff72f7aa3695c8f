"""How close the cheap per-column weight of evidence is to the exact game's Shapley values.

``data_gen.weight_of_evidence`` marginalizes the latent subtypes per column; where columns are
independent given the class it is exactly the Shapley value of the centred log posterior. The
latent subtypes make clues that share a cause (kidney disease, dialysis, PTH) dependent, so
this prints, on ``--n`` generated patients:

* the residual share of the weight of evidence (``Evidence.residual_share``: posterior left
  unattributed, patients impossible under some class left out);
* ``data_gen.oracle_shapley`` (exact game, ``--permutations`` antithetic permutations):
  efficiency error, Monte Carlo reproducibility (two seeds), and its agreement with the weight
  of evidence — median per-(patient, class) Spearman across the 52 columns and sign agreement;
* the time each takes.

Usage::

    python benchmarks/bench_ground_truth.py [--n 500] [--permutations 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from data_gen import generate_cohort, oracle_shapley, weight_of_evidence  # noqa: E402
from ml.agreement import attribution_agreement  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--permutations", type=int, default=32)
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args(argv)
    cohort = generate_cohort(args.n, random_state=args.seed)
    t = time.perf_counter()
    woe = weight_of_evidence(cohort)
    t_woe = time.perf_counter() - t
    t = time.perf_counter()
    sh = oracle_shapley(cohort, n_permutations=args.permutations, random_state=0)
    t_sh = time.perf_counter() - t
    sh2 = oracle_shapley(cohort, n_permutations=args.permutations, random_state=1)
    print(f"patients: {args.n}; weight of evidence {t_woe:.2f} s; oracle_shapley ({args.permutations} permutations) {t_sh:.1f} s")
    print(f"weight of evidence: residual share {woe.residual_share():.3f} (0 = the columns' evidence adds up to the posterior)")
    print(f"oracle_shapley: max efficiency error {np.abs(sh.residual).max():.2e}; residual share {sh.residual_share():.2e}")
    mc = attribution_agreement(sh.values, sh2.values, k=(5,))
    print(f"oracle_shapley, two seeds: median Spearman {mc['spearman_median']:.3f}, sign agreement {mc['sign_agreement']:.3f}")
    agree = attribution_agreement(woe.values, sh.values, k=(5,))
    print(f"weight of evidence vs oracle_shapley: median Spearman {agree['spearman_median']:.3f} "
          f"(IQR {agree['spearman_q1']:.3f}-{agree['spearman_q3']:.3f}), sign agreement {agree['sign_agreement']:.3f}, "
          f"FA@5 {agree['FA@5']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
