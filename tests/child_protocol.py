"""The protocol of the test children that run cases which used to kill the process: a `START <case>` line
before each case and one JSON line after it. A START with no JSON after it names the case the child died in."""
import json


def read_child_output(out: str, key: str):
    """Return ({case: result}, the case the child was in when it stopped, or None)."""
    results, started = {}, None
    for line in out.splitlines():
        if line.startswith("START "):
            started = line[6:]
        elif line.startswith("{"):
            r = json.loads(line)
            results[r[key]] = r
            started = None
    return results, started
