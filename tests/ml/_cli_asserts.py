"""Shared assertions of the CLI tests."""

import subprocess


def assert_one_line_error(res: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2, exactly one ``pulmocalc: error:`` line on stderr, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("pulmocalc: error: "), lines[0]
    assert "Traceback" not in res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
