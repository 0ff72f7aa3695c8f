"""Run a command with stderr on a pseudo-terminal (as a person at a terminal sees it) and stdout piped.

Progress bars must show on a terminal and nowhere else; this runs the real command with its
stderr attached to a pty, drains the terminal in a thread (so the child never blocks on a full
pty buffer) and returns what each stream received.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading


def run_with_terminal_stderr(argv, *, cwd=None, env=None, timeout=900) -> tuple[int, str, str]:
    """(exit status, stdout text, terminal text) of ``argv`` run with stderr on a pty."""
    master, slave = pty.openpty()
    # a terminal 120 columns wide and 40 rows high (a fresh pty reports 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=timeout)
    finally:
        os.close(slave)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), b"".join(chunks).decode("utf-8", "replace")
