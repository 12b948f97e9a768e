import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from prectr_tf.layers.event_encoder import EventEncoder, cosine_similarity  # noqa: E402
from prectr_tf.layers.id_embedding import IdEmbedding  # noqa: E402

K = 4
USERS = ["u1", "u2", "u3"]
ITEMS = [f"i{i}" for i in range(8)]
CATEGORIES = ["c0", "c1", "c2"]
LISTS = ("user_history", "query_context")


def random_features(batch=4, history_length=5, context_length=6, seed=0, lengths=None):
    """A batch shaped like `make_dataset`'s features (ids padded with "",
    ints with -1 beyond each list's length). Shared by the layer tests."""
    rng = np.random.default_rng(seed)
    features = {
        "user_id": rng.choice(USERS + ["cold-user"], batch).astype(object),
        "item_id": rng.choice(ITEMS, batch).astype(object),
        "item_category": rng.choice(CATEGORIES, batch).astype(object),
        "query_id": rng.integers(0, 5, batch),
        "user_event_count": rng.integers(0, 100, batch),
    }
    for name, size in zip(LISTS, (history_length, context_length)):
        length = (rng.integers(0, size + 1, batch) if lengths is None
                  else np.resize(np.asarray(lengths), batch))
        length[0] = 0  # always one empty list
        real = np.arange(size)[None, :] < length[:, None]
        columns = {
            "query_id": rng.integers(0, 5, (batch, size)),
            "item_id": rng.choice(ITEMS, (batch, size)).astype(object),
            "item_category": rng.choice(CATEGORIES, (batch, size)).astype(object),
            "relevance": rng.integers(-1, K, (batch, size)),
            "click": rng.integers(-1, 2, (batch, size)),
            "timestamp": rng.integers(0, 1000, (batch, size)),
        }
        for field, values in columns.items():
            pad = "" if values.dtype == object else -1
            features[f"{name}_{field}"] = np.where(real, values, pad)
        features[f"{name}_length"] = length
    features["user_event_count"] = np.where(features["user_history_length"] == 0, 0,
                                            features["user_event_count"])
    return {k: tf.constant(v.tolist() if v.dtype == object else v,
                           dtype=tf.string if v.dtype == object else tf.int64)
            for k, v in features.items()}


def feature_inputs(features):
    """`keras.Input`s matching `random_features`."""
    return {k: keras.Input(shape=v.shape[1:], dtype=v.dtype.name, name=k)
            for k, v in features.items()}


def id_embeddings(dim=8, seed=None):
    init = "uniform" if seed is None else keras.initializers.RandomNormal(seed=seed)
    return (IdEmbedding(dim, vocabulary=ITEMS, name="item_embedding", embeddings_initializer=init),
            IdEmbedding(4, vocabulary=CATEGORIES, name="category_embedding",
                        embeddings_initializer=init),
            IdEmbedding(dim, num_buckets=20, id_dtype="int64", name="query_embedding",
                        embeddings_initializer=init))


def make_encoder(**kwargs):
    item, category, query = id_embeddings()
    return EventEncoder(K, item, category, query, **kwargs)


def test_shapes_and_mask():
    features = random_features(lengths=[0, 2, 5, 3])
    encoder = make_encoder(relevance_dim=3, click_dim=2)
    out = encoder(features, list_name="user_history")
    assert encoder.output_dim == 3 + 2 + 8 + 4 + 2
    assert out["events"].shape == (4, 5, encoder.output_dim)
    np.testing.assert_array_equal(out["padding_mask"].numpy().sum(1), [0, 2, 5, 3])
    context = encoder(features, list_name="query_context")
    assert context["events"].shape == (4, 6, encoder.output_dim)


def test_event_vector_numpy_reference():
    features = random_features(lengths=[0, 4, 5, 2])
    encoder = make_encoder(relevance_dim=3, click_dim=2)
    out = {k: v.numpy() for k, v in encoder(features, list_name="user_history").items()}
    f = {k: v.numpy() for k, v in features.items()}
    mask = out["padding_mask"]
    relevance_rows = encoder.relevance_table.embeddings.numpy()
    click_rows = encoder.click_table.embeddings.numpy()
    item = encoder.item_embedding(features["user_history_item_id"]).numpy()
    category = encoder.category_embedding(features["user_history_item_category"]).numpy()
    query = encoder.query_embedding(features["user_history_query_id"]).numpy()
    current_query = encoder.query_embedding(features["query_id"]).numpy()
    current_item = encoder.item_embedding(features["item_id"]).numpy()

    def cos(a, b):
        return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1),
                                            1e-6)

    qsim = cos(query, current_query[:, None]) * mask
    isim = cos(item, current_item[:, None]) * mask
    expected = np.concatenate([
        relevance_rows[f["user_history_relevance"] + 1],   # -1 -> the 'unlabelled' row 0
        click_rows[f["user_history_click"] + 1],           # -1 -> the 'unknown' row 0
        item, category, qsim[..., None], isim[..., None]], axis=-1) * mask[..., None]
    np.testing.assert_allclose(out["events"], expected, atol=1e-5)
    np.testing.assert_allclose(out["query_similarity"], qsim, atol=1e-5)
    np.testing.assert_allclose(out["item_similarity"], isim, atol=1e-5)
    # The same query id as the current query is similarity 1.
    same = (f["user_history_query_id"] == f["query_id"][:, None]) & mask
    assert same.any()
    np.testing.assert_allclose(out["query_similarity"][same], 1.0, atol=1e-5)


def test_padding_is_zero_and_ignores_garbage():
    features = random_features(lengths=[0, 1, 3, 5])
    encoder = make_encoder()
    base = encoder(features, list_name="user_history")
    mask = base["padding_mask"].numpy()
    assert np.all(base["events"].numpy()[~mask] == 0.0)
    # Garbage in padded slots (real ids, labels) must not leak through.
    noisy = dict(features)
    for field, value in (("item_id", "i3"), ("item_category", "c1"), ("query_id", 2),
                         ("relevance", 3), ("click", 1)):
        name = f"user_history_{field}"
        fill = tf.fill(tf.shape(features[name]), tf.constant(value, features[name].dtype))
        noisy[name] = tf.where(tf.constant(mask), features[name], fill)
    out = encoder(noisy, list_name="user_history")
    np.testing.assert_allclose(out["events"].numpy(), base["events"].numpy(), atol=0)


def test_unlabelled_and_unknown_have_their_own_slots():
    encoder = make_encoder()
    features = random_features(batch=2, lengths=[2])
    labels = {"user_history_relevance": [[-1, 0, -1, -1, -1]] * 2,
              "user_history_click": [[-1, 0, -1, -1, -1]] * 2}
    features.update({k: tf.constant(v, tf.int64) for k, v in labels.items()})
    events = encoder(features, list_name="user_history")["events"].numpy()[1]
    assert not np.allclose(events[0, :8], events[1, :8])  # -1 is not level 0 / no click


def test_shared_and_owned_embeddings():
    item, category, query = id_embeddings()
    encoder = EventEncoder(K, item, {"output_dim": 3, "vocabulary": CATEGORIES}, query)
    assert encoder.item_embedding is item and encoder.query_embedding is query
    assert encoder.category_embedding.output_dim == 3
    second = EventEncoder(K, item, category, query, name="second")
    features = random_features()
    inputs = feature_inputs(features)
    model = keras.Model(inputs, [encoder(inputs, list_name="user_history")["events"],
                                 second(inputs, list_name="query_context")["events"]])
    # item + query tables once each, two category tables, 2 x (relevance, click).
    variables = model.trainable_variables
    assert len(variables) == len({id(v) for v in variables}) == 8


def test_bad_list_name():
    with pytest.raises(ValueError, match="list_name"):
        make_encoder()(random_features(), list_name="history")


def test_cosine_of_zero_vectors_is_zero():
    out = cosine_similarity(tf.zeros((2, 3)), tf.ones((2, 3))).numpy()
    assert np.all(out == 0.0)


def test_config_round_trip_and_keras_save_load(tmp_path):
    encoder = make_encoder(relevance_dim=5)
    clone = EventEncoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
    assert clone.item_embedding.vocabulary == ITEMS

    features = random_features()
    inputs = feature_inputs(features)
    history = encoder(inputs, list_name="user_history")
    context = encoder(inputs, list_name="query_context")
    model = keras.Model(inputs, {"history": history["events"], "context": context["events"]})
    expected = model(features)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    got = restored(features)
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=0)


def test_fit_recovers_click_rate_of_history():
    keras.utils.set_random_seed(0)
    # Target: the share of clicked events in the user's history; needs the
    # click-flag embedding and the mask to be right.
    features = random_features(batch=256, seed=1, lengths=[1, 2, 3, 4, 5])
    click = features["user_history_click"].numpy()
    mask = np.arange(5)[None, :] < features["user_history_length"].numpy()[:, None]
    y = ((click == 1) & mask).sum(1) / np.maximum(mask.sum(1), 1)
    inputs = feature_inputs(features)
    encoded = make_encoder()(inputs, list_name="user_history")
    keep = keras.ops.cast(encoded["padding_mask"], "float32")
    pooled = keras.ops.sum(encoded["events"], 1) / keras.ops.maximum(
        keras.ops.sum(keep, 1, keepdims=True), 1.0)
    model = keras.Model(inputs, keras.layers.Dense(1)(pooled))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    data = tf.data.Dataset.from_tensors((features, y[:, None])).repeat(30)
    before = float(np.mean((model(features).numpy()[:, 0] - y) ** 2))
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    after = float(np.mean((model(features).numpy()[:, 0] - y) ** 2))
    assert after < 0.2 * before


def test_lists_sent_once_per_request_equal_lists_repeated_per_row():
    """Serving sends each request's lists once ([R, L]) with a row -> request
    index; the encoder (and the CTR tower) must give what per-row lists give."""
    from prectr_tf.layers.ctr_tower import BaseCTRTower
    from prectr_tf.layers.event_encoder import REQUEST_INDEX

    per_request = random_features(batch=3, seed=4)
    index = np.array([0, 0, 1, 2, 2, 2])
    rows = {k: tf.gather(v, index) for k, v in per_request.items()}
    rng = np.random.default_rng(1)
    rows["item_id"] = tf.constant(rng.choice(ITEMS, len(index)).astype(object).tolist())
    rows["item_category"] = tf.constant(rng.choice(CATEGORIES, len(index)).astype(object)
                                        .tolist())
    shared = dict(rows, **{k: v for k, v in per_request.items()
                           if k.startswith(LISTS) and len(v.shape) > 1})
    shared[REQUEST_INDEX] = tf.constant(index)
    encoder = make_encoder()
    for list_name in LISTS:
        a, b = encoder(rows, list_name=list_name), encoder(shared, list_name=list_name)
        for key in ("events", "padding_mask", "query_similarity", "item_similarity"):
            np.testing.assert_allclose(np.asarray(a[key], float), np.asarray(b[key], float),
                                       atol=1e-6, err_msg=(list_name, key))
    item, category, query = id_embeddings()
    tower = BaseCTRTower(K, IdEmbedding(4, vocabulary=USERS), item, category, query)
    np.testing.assert_allclose(tower(rows), tower(shared), atol=1e-6)
