"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`).

TF Serving replays these `PredictionLog` records when it loads a version, so
the first real request does not pay for graph initialisation. One request
per size in `WARMUP_SIZES` (up to the export's `max_candidates`), of known
items plus one unknown item (so the split mode's request-time title path is
warmed too), for an unseen user with no history.
"""

import os

from prectr_tf.serving.client import RankingRequest, grpc_predict_request

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_SIZES = (10, 100, 1000)


def warmup_requests(catalogue, max_candidates, sizes=WARMUP_SIZES):
    """`RankingRequest`s of the given sizes (capped at `max_candidates`)."""
    ids = list(catalogue.item_id)
    query = str(catalogue.item_title[0]).split(" ")[0] if len(ids) else "warm up"
    out = []
    for size in sorted({min(s, max_candidates) for s in sizes}):
        known = [ids[i % len(ids)] for i in range(size - 1)] if ids else []
        items = [*known, "warmup-unknown-item"][:size]
        titles = [""] * len(known) + ["warmup unknown item title"]
        out.append(RankingRequest("warmup-user", query, items, titles=titles[:size]))
    return out


def write_warmup(export_dir, requests, schema, model_name):
    """Write the requests as `PredictionLog` records; returns how many.
    Needs the `serving` extra (`tensorflow-serving-api`)."""
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow_serving.apis import prediction_log_pb2  # noqa: PLC0415

    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
                request=grpc_predict_request([request], schema, model_name)))
            writer.write(log.SerializeToString())
    return len(requests)


def read_warmup(export_dir):
    """The `PredictRequest`s of an export's warm-up file."""
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow_serving.apis import prediction_log_pb2  # noqa: PLC0415

    records = tf.data.TFRecordDataset(os.path.join(export_dir, WARMUP_FILE))
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request
            for r in records]

