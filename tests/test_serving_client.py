"""The client: REST JSON (row and columnar) and gRPC requests, decoded the
way TF Serving decodes them and fed to the loaded export, give the scores of
the same request sent directly; responses parse back per request."""

import json

import numpy as np
import pytest
import tensorflow as tf

from prectr_tf.serving.client import (RankingRequest, grpc_predict_request,
                                      parse_grpc_response, parse_rest_response,
                                      request_arrays, rest_predict_body, schema_of_export)
from prectr_tf.serving.signature import OUTPUTS

pytest.importorskip("tensorflow_serving.apis.predict_pb2")
from tensorflow_serving.apis import predict_pb2  # noqa: E402


def _requests(data_dir):
    from prectr_tf.data.pipeline import read_split_columns

    rows = read_split_columns(data_dir, "eval", ("user_id", "query", "item_id"))
    items = list(dict.fromkeys(rows["item_id"]))
    return [
        RankingRequest(rows["user_id"][0], rows["query"][0], items[:5],
                       history=[{"query": "cordless drill", "item_id": items[7], "click": 1,
                                 "relevance": 3, "timestamp": 5},
                                {"query_id": 42, "item_id": items[8]}]),
        RankingRequest("a-new-user", "paint brush", [items[3], "never-seen-item"],
                       titles=["", "nylon paint brush 3 inch"],
                       item_features=[[np.nan, np.nan], [0.2, 1.5]]),
        RankingRequest("nobody", "ドリル", []),
    ]


def _signature_dtypes(rank):
    return {name: spec.dtype for name, spec in rank.structured_input_signature[1].items()}


def _direct(rank, arrays):
    return {k: v.numpy() for k, v in rank(**{k: tf.constant(v) for k, v in arrays.items()}).items()}


def test_request_arrays_follow_the_signature(exported):
    _, data_dir, _, _, split = exported
    schema = schema_of_export(split)
    arrays = request_arrays(_requests(data_dir), schema)
    rank = tf.saved_model.load(split).signatures["rank"]
    assert set(arrays) == set(_signature_dtypes(rank))
    assert arrays["num_candidates"].tolist() == [5, 2, 0]
    assert arrays["item_id"].shape == (3, 5) and arrays["item_id"][1, 2] == ""
    assert arrays["user_history_length"].tolist() == [2, 0, 0]
    assert arrays["user_event_count"].tolist() == [2, 0, 0]
    from prectr_tf.data.query_normalization import query_id
    assert arrays["user_history_query_id"][0, :2].tolist() == [
        int(query_id(["cordless drill"]).numpy()[0]), 42]
    assert arrays["user_history_query_id"][0, 2] == -1  # padding
    assert np.isnan(arrays["item_features"][1, 0]).all()
    with pytest.raises(ValueError, match="titles has 1 entries for 2 candidates"):
        request_arrays([RankingRequest("u", "q", ["a", "b"], titles=["x"])], schema)


@pytest.mark.parametrize("columnar", [False, True])
def test_rest_body_decoded_as_tf_serving_does_scores_the_same(exported, columnar):
    _, data_dir, _, _, split = exported
    schema = schema_of_export(split)
    requests = _requests(data_dir)
    rank = tf.saved_model.load(split).signatures["rank"]
    expected = _direct(rank, request_arrays(requests, schema))
    body = json.loads(json.dumps(rest_predict_body(requests, schema, columnar=columnar)))
    assert body["signature_name"] == "rank"
    dtypes = _signature_dtypes(rank)
    if columnar:
        decoded = {k: np.array(v) for k, v in body["inputs"].items()}
    else:  # "instances": one object per request, stacked on axis 0
        decoded = {k: np.array([row[k] for row in body["instances"]]) for k in dtypes}
    got = rank(**{k: tf.constant(v.astype(object) if dtypes[k] == tf.string else v,
                                 dtypes[k]) for k, v in decoded.items()})
    for name in OUTPUTS:
        np.testing.assert_allclose(got[name].numpy(), expected[name], atol=1e-6)
    # The response, in TF Serving's row and columnar forms, parses per request.
    counts = [len(r.candidates) for r in requests]
    outputs = {k: v.numpy().tolist() for k, v in got.items()}
    rows = {"predictions": [{k: outputs[k][i] for k in OUTPUTS} for i in range(len(requests))]}
    for response in (rows, {"outputs": outputs}):
        parsed = parse_rest_response(json.loads(json.dumps(response)), counts)
        assert [len(p["score"]) for p in parsed] == counts
        np.testing.assert_allclose(parsed[1]["score"], expected["score"][1, :2], atol=1e-6)
        assert parsed[0]["relevance_probs"].shape == (5, 4)


def test_grpc_request_decoded_scores_the_same(exported):
    _, data_dir, _, _, split = exported
    schema = schema_of_export(split)
    requests = _requests(data_dir)
    rank = tf.saved_model.load(split).signatures["rank"]
    expected = _direct(rank, request_arrays(requests, schema))
    message = grpc_predict_request(requests, schema, "prectr_v2", version=2)
    wire = predict_pb2.PredictRequest.FromString(message.SerializeToString())
    assert (wire.model_spec.name, wire.model_spec.signature_name,
            wire.model_spec.version.value) == ("prectr_v2", "rank", 2)
    got = rank(**{k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()})
    response = predict_pb2.PredictResponse()
    for name in OUTPUTS:
        np.testing.assert_allclose(got[name].numpy(), expected[name], atol=1e-6)
        response.outputs[name].CopyFrom(tf.make_tensor_proto(got[name].numpy()))
    parsed = parse_grpc_response(response, [len(r.candidates) for r in requests])
    np.testing.assert_allclose(parsed[0]["click_given_relevance"],
                               expected["click_given_relevance"][0, :5], atol=1e-6)
    assert parsed[2]["score"].shape == (0,)


def test_the_tf_serving_config_examples_parse():
    import pathlib
    import re

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    folder = pathlib.Path(__file__).resolve().parents[1] / "examples" / "serving"
    config = text_format.Parse((folder / "models.config").read_text(),
                               model_server_config_pb2.ModelServerConfig())
    assert [c.name for c in config.model_config_list.config] == ["prectr_v2", "prectr_v1"]
    assert config.model_config_list.config[0].model_version_policy.latest.num_versions == 2
    # BatchingParameters is not in tensorflow-serving-api; check the field names against
    # TF Serving's session_bundle_config.proto.
    known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
             "num_batch_threads", "thread_pool_name", "allowed_batch_sizes",
             "pad_variable_length_inputs"}
    text = (folder / "batching_parameters.txt").read_text()
    fields = set(re.findall(r"^([a-z_]+)\s*[{:]", text, flags=re.M))
    assert fields and fields <= known, fields - known
