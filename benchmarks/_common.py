"""Helpers shared by the benchmark scripts."""

import resource


def _status_kb(pid, field):
    """A `/proc/<pid>/status` field in kB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb():
    """Peak resident memory of this process since its `exec`, in MB.

    `VmHWM`, not `getrusage().ru_maxrss`: Linux carries `ru_maxrss` across
    `exec`, so a spawned child would report at least the RSS of the parent
    it was forked from (the parent holding TF and the log)."""
    peak = _status_kb("self", "VmHWM:")
    return peak / 1024 if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreeMemorySampler:
    """Peak summed RSS of process `root` (default this one) and all its
    descendants (Beam's worker processes), sampled every `interval` s on a
    thread, in MB. Sampled from the parent, the measured process runs
    without an extra thread of ours.

    Example:
    >>> with TreeMemorySampler() as sampler:
    ...     pass
    >>> sampler.peak_mb > 0
    True
    """

    def __init__(self, root=None, interval=1.0):
        self.root, self.interval, self.peak_mb = root, interval, 0.0

    def _sample(self):
        # /proc, not psutil (not a dependency of the package): children by ppid.
        import os  # noqa: PLC0415

        children = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # a process that just exited
                continue
            children.setdefault(ppid, []).append(int(pid))
        tree, total = [self.root or os.getpid()], 0
        while tree:
            pid = tree.pop()
            tree.extend(children.get(pid, ()))
            total += _status_kb(pid, "VmRSS:")
        self.peak_mb = max(self.peak_mb, total / 1024)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        import threading  # noqa: PLC0415

        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def simulated_dataset(sim_config, work):
    """Simulate `sim_config` and build it under `work/dataset` (eval: the
    latest 20 % of requests). Returns `(sim, schema, data_dir)`."""
    import os  # noqa: PLC0415

    from prectr_tf.data.build import BuildConfig, build_dataset  # noqa: PLC0415
    from prectr_tf.data.schema import DataSchema  # noqa: PLC0415
    from prectr_tf.data.simulator import simulate  # noqa: PLC0415

    sim = simulate(sim_config)
    schema = DataSchema(num_relevance_levels=sim_config.num_relevance_levels,
                        num_item_features=sim_config.num_item_features)
    data_dir = os.path.join(work, "dataset")
    build_dataset(sim.log, data_dir, schema, BuildConfig(eval_fraction=0.2), overwrite=True,
                  progress=False)
    return sim, schema, data_dir


def machine_line():
    """`machine: <arch>, <n> cores, <platform>, Python <version>` for a report."""
    import os  # noqa: PLC0415
    import platform  # noqa: PLC0415

    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
            f"Python {platform.python_version()}")


def run_pool(commands, jobs, logs, on_exit=None):
    """Run `commands` (argument lists), at most `jobs` at a time, in order,
    each with stdout and stderr to its path in `logs`.

    Args:
        commands: list of argument lists for `subprocess.Popen`.
        jobs: int, how many run at once (a new one starts as one ends).
        logs: list of log paths, one per command.
        on_exit: called as `on_exit(index, returncode, seconds)` when one ends
            (seconds since the pool started).

    Returns:
        the exit codes, in the order of `commands`.
    """
    import subprocess  # noqa: PLC0415
    import time  # noqa: PLC0415

    started, codes, running, next_index = time.perf_counter(), [None] * len(commands), {}, 0
    while next_index < len(commands) or running:
        while next_index < len(commands) and len(running) < jobs:
            log = open(logs[next_index], "w")  # noqa: SIM115  (closed when the command ends)
            running[next_index] = (subprocess.Popen(commands[next_index], stdout=log,
                                                    stderr=subprocess.STDOUT), log)
            next_index += 1
        time.sleep(0.2)
        for index, (process, log) in list(running.items()):
            if process.poll() is not None:
                log.close()
                del running[index]
                codes[index] = process.returncode
                if on_exit:
                    on_exit(index, process.returncode, time.perf_counter() - started)
    return codes


def without_options(argv, names):
    """`argv` without the options in `names` and their values (`--name value`
    or `--name=value`; each of them takes one value)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif arg.split("=", 1)[0] not in names or "=" not in arg:
            kept.append(arg)
    return kept
