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
