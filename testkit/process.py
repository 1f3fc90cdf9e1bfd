"""What a process costs, for the benchmarks' figures (Linux /proc)."""

from __future__ import annotations

from pathlib import Path


def rss_mib(pid: int | str = "self") -> float:
    """A process's resident memory in MiB (mapped pages that were touched count); NaN where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def memory(pid: int | str = "self") -> str:
    """A process's memory as a figure to print: resident (RSS) and proportional (PSS), and of it the anonymous part.

    RSS counts a file mapped several times once per mapping: the local LLM maps its GGUF once per llama.cpp context
    (4 contexts: 4 x 137 MiB of the same page cache), so RSS grows with contexts that cost little. PSS shares each
    page among its mappings, and the anonymous part (heaps, KV caches, buffers) is what calls really add.
    """
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0])
    except OSError:
        return f"RSS {rss_mib(pid):.0f} MiB"
    rss, pss, anon = (fields.get(k, 0) / 1024 for k in ("Rss", "Pss", "Pss_Anon"))
    return f"RSS {rss:.0f} MiB, PSS {pss:.0f} MiB (anonymous {anon:.0f})"


def cpu_seconds(pid: int | str = "self") -> float:
    """CPU time a process has used so far (user and system, all its threads), seconds."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """CPU model, cores and load average (1, 5, 15 min): every benchmark figure depends on them."""
    import os

    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}"
