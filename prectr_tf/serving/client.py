"""Client side of the `rank` signature: Python requests → TF Serving REST
`predict` JSON (row or columnar) or a gRPC `PredictRequest`, and responses
back to Python (DESIGN §6).

A `RankingRequest` holds what a client knows: the user, the query text, the
user's history and the candidate ids (titles, categories and dense features
only where it has them; the export fills in the items it knows).
`request_arrays` turns a batch of them into the signature's padded inputs;
the REST and gRPC helpers wrap those. Only numpy is needed, except for
history events given as query *text*: their `query_id` is TensorFlow's
FarmHash of the normalised text (`prectr_tf.data.query_normalization`), so
that one path imports TensorFlow; pass `query_id`s to avoid it. gRPC needs
the `serving` extra (`tensorflow-serving-api`).

Example:
>>> from prectr_tf.serving import export_model
>>> schema = schema_of_export(export_model(model, f"{tmp}/exports/prectr_v2", data_dir))
>>> body = rest_predict_body([RankingRequest("u1", "drill", ["i1", "i2"])], schema)
>>> body["signature_name"], body["instances"][0]["num_candidates"]
('rank', 2)
>>> # POST body to http://host:8501/v1/models/prectr_v2:predict; a response:
>>> response = {"outputs": {"score": [[0.5, 0.25, 0.0]],
...                         "relevance_probs": [[[0.25] * 4] * 3],
...                         "click_given_relevance": [[[0.5] * 4] * 3]}}
>>> parse_rest_response(response, [2])[0]["score"].tolist()   # padding cut off
[0.5, 0.25]
"""

import dataclasses
import json
import os

import numpy as np

from prectr_tf.data.schema import EVENT_FIELDS, DataSchema
from prectr_tf.serving.signature import NUM_CANDIDATES, OUTPUTS

SIGNATURE = "rank"
# What `export_model` writes beside the SavedModel: mode, sizes, schema.
EXPORT_INFO = os.path.join("assets.extra", "prectr_export.json")
_NUMPY = {"string": object, "int64": np.int64, "float32": np.float32}


@dataclasses.dataclass
class RankingRequest:
    """One request: one user, one query, N candidates.

    Args:
        user_id: str (an unseen user is fine: the cold-start path).
        query: str, the raw query text.
        candidates: list of N item ids.
        titles: list of N titles, or None; "" where unknown to the client.
        categories: list of N categories, or None.
        item_features: float `[N, F]` or None; NaN where unknown.
        history: list of past events, oldest first, each a dict with
            `item_id`, `item_category`, `relevance`, `click`, `timestamp`
            (missing: unknown) and `query` (text) or `query_id`; only the
            latest L_u are sent.
        user_event_count: int or None (default: the history's length), the
            user's earlier impressions (the activity the preference gate
            reads).
    """

    user_id: str
    query: str
    candidates: list
    titles: list | None = None
    categories: list | None = None
    item_features: np.ndarray | None = None
    history: list = dataclasses.field(default_factory=list)
    user_event_count: int | None = None


def export_info(path):
    """`assets.extra/prectr_export.json` of an export version folder (a dict)."""
    with open(os.path.join(path, EXPORT_INFO)) as fh:
        return json.load(fh)


def schema_of_export(path):
    """The `DataSchema` an export was made for."""
    return DataSchema(**export_info(path)["schema"])


def _history_query_ids(events):
    texts = [e["query"] for e in events if "query_id" not in e and "query" in e]
    if not texts:
        return {}
    from prectr_tf.data.query_normalization import query_id  # noqa: PLC0415 (imports TF)

    return dict(zip(texts, query_id(np.asarray(texts, dtype=object).astype(str)).numpy()))


def request_arrays(requests, schema):
    """The `rank` signature's inputs for a batch of `RankingRequest`s:
    `{input name: np.ndarray}`, candidates padded to the longest request."""
    num = len(requests)
    width = max([len(r.candidates) for r in requests] + [0])
    length = schema.history_length
    out = {"user_id": np.array([r.user_id for r in requests], object),
           "query": np.array([r.query for r in requests], object),
           NUM_CANDIDATES: np.array([len(r.candidates) for r in requests], np.int64)}
    events = [r.history[-length:] for r in requests]
    out["user_history_length"] = np.array([len(e) for e in events], np.int64)
    out["user_event_count"] = np.array(
        [len(r.history) if r.user_event_count is None else r.user_event_count
         for r in requests], np.int64)
    hashed = _history_query_ids([e for es in events for e in es])
    for f in EVENT_FIELDS:
        pad = schema.padding_value(f.dtype)
        column = np.full((num, length), pad, _NUMPY[f.dtype])
        for i, es in enumerate(events):
            for j, event in enumerate(es):
                if f.name == "query_id":
                    value = event.get("query_id", hashed.get(event.get("query"), pad))
                else:
                    value = event.get(f.name, pad)
                column[i, j] = pad if value is None else value
        out[f"user_history_{f.name}"] = column
    for name, attr in (("item_id", "candidates"), ("item_title", "titles"),
                       ("item_category", "categories")):
        column = np.full((num, width), "", object)
        for i, r in enumerate(requests):
            values = getattr(r, attr)
            if values is not None:
                if len(values) != len(r.candidates):
                    raise ValueError(f"request {i}: {attr} has {len(values)} entries for "
                                     f"{len(r.candidates)} candidates")
                column[i, :len(values)] = values
        out[name] = column
    if schema.num_item_features:
        features = np.full((num, width, schema.num_item_features), np.nan, np.float32)
        for i, r in enumerate(requests):
            if r.item_features is not None:
                features[i, :len(r.candidates)] = np.asarray(r.item_features, np.float32)
        out["item_features"] = features
    return out


def _json_value(value):
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value]
    if isinstance(value, (bytes, str)):
        return value if isinstance(value, str) else value.decode("utf-8")
    if isinstance(value, (np.floating, float)):
        # `json.dumps` writes NaN as the bare token NaN, which TF Serving's
        # REST parser accepts (its "JSON conformance" section).
        return float(value)
    return int(value)


def rest_predict_body(requests, schema, columnar=False, signature=SIGNATURE):
    """The JSON body (a dict) of a TF Serving REST `predict` call.

    Args:
        requests: list of `RankingRequest`.
        schema: the export's `DataSchema` (`schema_of_export`).
        columnar: False (default): `"instances"`, one object per request;
            True: `"inputs"`, one list per input.
        signature: the signature name (default `"rank"`).
    """
    arrays = request_arrays(requests, schema)
    if columnar:
        return {"signature_name": signature,
                "inputs": {k: _json_value(v) for k, v in arrays.items()}}
    return {"signature_name": signature,
            "instances": [{k: _json_value(v[i]) for k, v in arrays.items()}
                          for i in range(len(requests))]}


def grpc_predict_request(requests, schema, model_name, signature=SIGNATURE, version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the batch."""
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow_serving.apis import predict_pb2  # noqa: PLC0415 (the `serving` extra)

    message = predict_pb2.PredictRequest()
    message.model_spec.name = model_name
    message.model_spec.signature_name = signature
    if version is not None:
        message.model_spec.version.value = int(version)
    for name, value in request_arrays(requests, schema).items():
        message.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return message


def _split(outputs, num_candidates):
    return [{name: np.asarray(outputs[name])[i, :n] for name in OUTPUTS}
            for i, n in enumerate(num_candidates)]


def parse_rest_response(body, num_candidates):
    """A REST `predict` response (dict, either format) → one dict per
    request of `score` `[n]`, `relevance_probs` and `click_given_relevance`
    `[n, K]`, padding cut off."""
    if "predictions" in body:
        rows = body["predictions"]
        outputs = {name: np.array([row[name] for row in rows], dtype=np.float32)
                   for name in OUTPUTS}
    else:
        outputs = {name: np.array(body["outputs"][name], dtype=np.float32) for name in OUTPUTS}
    return _split(outputs, num_candidates)


def parse_grpc_response(response, num_candidates):
    """A gRPC `PredictResponse` → per-request dicts, as `parse_rest_response`."""
    import tensorflow as tf  # noqa: PLC0415

    return _split({name: tf.make_ndarray(response.outputs[name]) for name in OUTPUTS},
                  num_candidates)

