"""Every `pulmocalc` command shown in the README exists and its flags parse (nothing is run).

Commands are taken from the README's fenced shell blocks: each line (or each part of a line
joined with ``&&``, ``;`` or ``|``) that calls ``pulmocalc`` or ``.venv/bin/pulmocalc``, with
comments and continuation lines handled as a shell would. The parser is the real one
(``ml.cli.build_parser``); a wrong subcommand, flag or value fails here instead of in a reader's
shell.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ml.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
PROGRAMS = ("pulmocalc", ".venv/bin/pulmocalc")
OPERATORS = ("&&", ";", "|", "||")


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", text, flags=re.S)


def _commands(text: str) -> list[list[str]]:
    out = []
    for block in _shell_blocks(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            # non-POSIX mode keeps quotes on the tokens, so a quoted ';' is a word, not an operator
            lexer = shlex.shlex(line, posix=False, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                tokens = list(lexer)
                words = [None if t in OPERATORS else shlex.split(t)[0] for t in tokens]  # None: an operator
            except (ValueError, IndexError) as exc:  # an unbalanced quote is a README error too
                raise AssertionError(f"README line does not parse as shell: {line!r} ({exc})") from None
            part: list[str] = []
            for w in words + [None]:
                if w is None:
                    if part and part[0] in PROGRAMS:
                        out.append(part[1:])
                    part = []
                else:
                    part.append(w)
    return out


COMMANDS = _commands(README.read_text(encoding="utf-8"))


def test_the_readme_shows_the_main_commands():
    shown = {argv[0] for argv in COMMANDS if argv}
    assert {"benchmark", "generate", "train", "evaluate", "predict", "explain", "serve", "template"} <= shown, shown


def test_the_extractor_reads_chains_comments_and_continuations():
    text = "```bash\n.venv/bin/pip install x && .venv/bin/pulmocalc benchmark --out out/report   # main job\n" \
           "pulmocalc generate --n 10 \\\n    --out c.csv | head\n```\n"
    assert _commands(text) == [["benchmark", "--out", "out/report"], ["generate", "--n", "10", "--out", "c.csv"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a)[:60] for a in COMMANDS])
def test_readme_command_parses(argv, capsys):
    parser = build_parser()
    if argv in (["-h"], ["--help"], ["--version"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 0
        return
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"`pulmocalc {' '.join(argv)}` from the README does not parse: {capsys.readouterr().err.strip()}")
    assert callable(args._run)
