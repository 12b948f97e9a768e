"""Helpers shared by the benchmark scripts."""

import resource


def peak_rss_mb():
    """Peak resident memory of this process since its `exec`, in MB.

    `VmHWM`, not `getrusage().ru_maxrss`: Linux carries `ru_maxrss` across
    `exec`, so a spawned child would report at least the RSS of the parent
    it was forked from (the parent holding TF and the log)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
