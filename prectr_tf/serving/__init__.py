"""Coarse-ranking serving (DESIGN §6): the SavedModel export for TF Serving
and its client.

* `export_model` (`export.py`): `<base>/<version>/`, atomic, the `rank`
  signature (`signature.py`) over the catalogue and query context
  (`tables.py`) inside the graph (`ranking.py`), warm-up records (`warmup.py`);
* `client.py`: requests → REST JSON / gRPC and responses back;
* `python -m prectr_tf.serving.saved_model_cli`: `saved_model_cli` with the
  TF Text ops the export uses.
"""

from prectr_tf.serving.client import (RankingRequest, export_info, grpc_predict_request,
                                      parse_grpc_response, parse_rest_response,
                                      request_arrays, rest_predict_body, schema_of_export)
from prectr_tf.serving.export import export_model, versions
from prectr_tf.serving.signature import OUTPUTS, request_signature

__all__ = [
    "OUTPUTS",
    "RankingRequest",
    "export_info",
    "export_model",
    "grpc_predict_request",
    "parse_grpc_response",
    "parse_rest_response",
    "request_arrays",
    "request_signature",
    "rest_predict_body",
    "schema_of_export",
    "versions",
]
