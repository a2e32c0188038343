"""Time and peak memory of each parser at its size limit, on ordinary and on hostile input.

Each case runs in a fresh process (so its peak RSS is its own) and prints the
input size, the time of one parse and the process's peak resident memory.
docs/performance.md ("Parsers at their limits") holds the figures.

    .venv/bin/python scripts/bench_parsers.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> code run in a child: builds ``data`` and sets ``parse`` (a no-argument callable)
CASES = {
    "history, 16 MiB of conda blocks": """
from safe_pip.conda_history import MAX_HISTORY_BYTES as LIMIT, parse_history
block = "==> 2024-01-01 00:00:00 <==\\n# cmd: conda install x\\n" + "".join(
    f"+conda-forge/linux-64::pkg{i}-1.{i}-py312h_0\\n" for i in range(200)
) + "# update specs: ['x']\\n"
data = (block * (LIMIT // len(block) + 1))[:LIMIT].encode()
parse = lambda: parse_history(data).requested_specs()
""",
    "history, 16 MiB of 3-byte bad lines": """
from safe_pip.conda_history import MAX_HISTORY_BYTES as LIMIT, parse_history
data = (b"==> t <==\\n" + b"+x\\n" * (LIMIT // 3))[:LIMIT]
parse = lambda: parse_history(data)
""",
    "record, 32 MiB compact JSON (full parse)": """
import json
from safe_pip.conda_records import MAX_RECORD_BYTES as LIMIT, extract_record
files = [f"lib/python3.12/site-packages/p/{i:08d}.py" for i in range(LIMIT // 48)]
data = json.dumps({"name": "x", "version": "1", "build": "0", "files": files}).encode()
data = data[: LIMIT - 2] if len(data) > LIMIT else data
parse = lambda: extract_record(data)
""",
    "policy, 256 KiB of unknown keys": """
import os, tempfile
from safe_pip.errors import PolicyError
from safe_pip.policy import MAX_POLICY_BYTES as LIMIT, load_policy
text = "[install]\\n" + "".join(f"conda-env{i} = 1\\n" for i in range(LIMIT // 18))
path = os.path.join(tempfile.mkdtemp(), "policy.toml")
open(path, "w").write(text[:LIMIT])
data = text[:LIMIT]
def parse():
    try:
        load_policy(None, system_path=path)
    except PolicyError:
        pass
""",
    "pip.conf, 1 MiB of 'a<spaces>b' lines": """
from safe_pip.errors import InputError
from safe_pip.pipconfig import MAX_CONFIG_BYTES as LIMIT, parse_config_text
data = "[s]\\n" + ("a" + " " * 4000 + "b\\n") * (LIMIT // 4003)
def parse():
    try:
        parse_config_text(data, "pip.conf", "global")
    except InputError:
        pass
""",
    "redaction, a 1 MiB argument of 'a://x:y/'": """
from safe_pip.audit.redact import redact_argv
data = "a://x:y/" * (1 << 17) + " @"
parse = lambda: redact_argv([data])
""",
}

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {src!r})
{setup}
start = time.perf_counter()
parse()
took = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"size": len(data), "seconds": took, "peak_kib": peak}}))
"""


def main() -> int:
    print(f"{'case':<44} {'input':>9} {'time':>9} {'peak RSS':>9}")
    for name, setup in CASES.items():
        code = _CHILD.format(src=str(ROOT / "src"), setup=setup)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(out)
        print(
            f"{name:<44} {result['size'] / 2**20:>6.2f} MiB {result['seconds']:>7.2f} s"
            f" {result['peak_kib'] / 1024:>5.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
