"""What the benchmark scripts share to tabulate their results: the last
JSON line a load generator wrote, and the OpenSSL version for the line that
says what a run ran on (scripts/bench-relay.sh, scripts/bench-backplane.sh
and scripts/bench-files.sh import it from their heredocs)."""

import json
import os
import subprocess


def load(out, name):
    """The last JSON line of OUT/NAME.json, or None if the run left none."""
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def openssl_version():
    """`openssl version`, for the line that says what the run ran on."""
    try:
        return subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "openssl ?"
