"""The names of the scale-out engines (DESIGN §9), in a module that imports
neither TensorFlow nor Apache Beam, so that `prectr --help` lists them at once
and the modules that run them share one list.

* `STRATEGIES`: the `tf.distribute` strategies of `prectr train --strategy`
  (`prectr_tf.models.distribute.make_strategy`);
* `BEAM_RUNNERS`: the Beam runners of `prectr build --runner`
  (`prectr_tf.data.beam_build`).
"""

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "parameter_server")
BEAM_RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner", "DataflowRunner")
