"""What the benchmark scripts share to tabulate their results: reading the
last JSON line a load generator wrote (scripts/bench-relay.sh,
scripts/bench-backplane.sh import it from their heredocs)."""

import json
import os


def load(out, name):
    """The last JSON line of OUT/NAME.json, or None if the run left none."""
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
