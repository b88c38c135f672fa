"""CPU time of local processes from /proc, for the benchmarks that report CPU per request next to wall clock."""

from __future__ import annotations

import os
from pathlib import Path


def proc_cpu(pid: int) -> float:
    """utime + stime of a local process in seconds (the server, its workers, PostgreSQL backends); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
