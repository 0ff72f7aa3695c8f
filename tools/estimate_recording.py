"""Write the knowledge base's ``case_report`` recording regime from the published case reports.

The rates are numbers of the knowledge base like any other, so they live in
``data_gen/knowledge.toml`` (``[recording.case_report]``) with their source; this script is how
they were computed: :func:`data_gen.published.estimate_recording_rates` on the shipped
``data_gen/published_cases.json``, rounded to 3 decimals. ``tests/data_gen/test_recording.py``
checks that the knowledge base holds exactly what this script computes.

Usage::

    python tools/estimate_recording.py            # rewrite the section in knowledge.toml
    python tools/estimate_recording.py --check    # exit 1 if the section is out of date
    python tools/estimate_recording.py --table    # print mentioned / expected / rate per value
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data_gen.knowledge import default_knowledge_path, load_knowledge, recording_value_keys  # noqa: E402
from data_gen.published import estimate_recording_rates, load_published_cases  # noqa: E402

BEGIN = "# >>> case_report regime: written by tools/estimate_recording.py, do not edit by hand"
END = "# <<< case_report regime"
PRIOR_STRENGTH = 2.0
METHOD = (
    "moment estimate: reports coding the value / the number the knowledge base expects them to hold "
    "(sum over cases of P(value recorded | class)), shrunk toward the pooled rate with 2 pseudo-patients, "
    "clipped to [0, 1] (data_gen.published.estimate_recording_rates)"
)


def render(kb_path: Path | None = None) -> str:
    """The TOML section, between its markers."""
    kb = load_knowledge(kb_path)
    cases = load_published_cases(knowledge=kb)
    est = estimate_recording_rates(cases, knowledge=kb, prior_strength=PRIOR_STRENGTH)
    rate = {(r.column, r.value): r.rate for r in est.itertuples()}
    lines = [
        BEGIN,
        "[recording.case_report]",
        'description = "what a published case report mentions: present findings and positive history far more often than absent ones"',
        f'source = {{ kind = "published_cases", n_cases = {len(cases)}, method = "{METHOD}", '
        f'note = "pooled rate {est.attrs["pooled_rate"]:.3f}; the same reports are the external test set, see data_gen/published.py" }}',
        "",
        "[recording.case_report.rates]",
    ]
    for col in kb.column_names:
        keys = recording_value_keys(kb.columns[col])
        vals = ", ".join(f"{k} = {rate[(col, k)]:.3f}" for k in keys)
        lines.append(f"{col} = {{ {vals} }}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _replace(text: str, section: str) -> str:
    pat = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n", re.S)
    if pat.search(text):
        return pat.sub(lambda _: section, text)
    return text.rstrip("\n") + "\n\n" + section


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if knowledge.toml is out of date")
    ap.add_argument("--table", action="store_true", help="print the estimate per column and value")
    args = ap.parse_args(argv)
    path = default_knowledge_path()
    if args.table:
        kb = load_knowledge()
        est = estimate_recording_rates(load_published_cases(knowledge=kb), knowledge=kb, prior_strength=PRIOR_STRENGTH)
        print(est.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"pooled rate {est.attrs['pooled_rate']:.3f} over {est.attrs['n_cases']} cases")
        return 0
    text = path.read_text(encoding="utf-8")
    new = _replace(text, render())
    if args.check:
        if new != text:
            print(f"{path} is out of date: run python tools/estimate_recording.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        path.write_text(new, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
