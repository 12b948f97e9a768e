"""The search-log simulator (DESIGN §7): numpy/pandas only, deterministic by seed.

`simulate(SimulatorConfig(...))` returns a `SimulatedLog` whose `.log` is an
impression log in the data contract and whose `.candidates` keep the true
relevance and click probability of every coarse-ranking candidate, shown or
not. The generative process and every parameter are documented on
`SimulatorConfig`.
"""

from prectr_tf.data.simulator.config import SimulatorConfig
from prectr_tf.data.simulator.simulate import simulate
from prectr_tf.data.simulator.simulated_log import SimulatedLog, read_simulated_log
from prectr_tf.data.simulator.stats import format_stats, simulation_stats

__all__ = ["SimulatorConfig", "SimulatedLog", "format_stats", "read_simulated_log",
           "simulate", "simulation_stats"]
