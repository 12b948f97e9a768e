import os
import pathlib

# Quiet TensorFlow's C++ start-up chatter; set before any test imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("PRECTR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data():
    """`../shared/data` (or $PRECTR_SHARED_DATA); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PRECTR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small simulated log built into a dataset, shared by the model tests:
    `(data_dir, wordpiece_vocabulary)`."""
    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary

    config = SimulatorConfig(num_users=80, num_requests=400, num_items=300, num_queries=40,
                             num_candidates=30, page_size=5, num_item_features=2, seed=11)
    sim = simulate(config)
    out = tmp_path_factory.mktemp("tiny") / "dataset"
    schema = DataSchema(history_length=5, context_length=5, num_item_features=2)
    build_dataset(sim.log, out, schema, BuildConfig(eval_fraction=0.25), progress=False)
    texts = sorted(set(sim.log["query"]) | set(sim.log["item_title"]))
    return out, learn_wordpiece_vocabulary(texts, vocabulary_size=300)


SPLIT_ENCODER = dict(max_length=32, num_layers=2, hidden_dim=16, num_heads=2,
                     intermediate_dim=32, num_split_layers=1)


@pytest.fixture(scope="session")
def exported(tiny_dataset, tmp_path_factory):
    """A briefly trained split-encoder `prectr_v2` on `tiny_dataset`, exported
    twice: `(model, data_dir, base_dir, exact_path, split_path)`."""
    import keras

    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.prectr_model import PRECTRModel
    from prectr_tf.serving.export import export_model

    data_dir, vocabulary = tiny_dataset
    encoder = EncoderConfig(**SPLIT_ENCODER)
    keras.utils.set_random_seed(0)
    model = PRECTRModel.from_dataset(data_dir, preset("prectr_v2", encoder=encoder),
                                     wordpiece_vocabulary=vocabulary)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(make_dataset(data_dir, "train", batch_size=64, seed=0), epochs=1, verbose=0)
    base = tmp_path_factory.mktemp("exports") / "prectr_v2"
    exact = export_model(model, base, data_dir, mode="exact")
    split = export_model(model, base, data_dir, mode="split")
    return model, data_dir, base, exact, split


@pytest.fixture
def kill_after_epoch():
    """A Keras callback class that simulates a killed run: it raises
    `KeyboardInterrupt` at the end of the given 0-based epoch."""
    import keras

    class KillAfterEpoch(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            if epoch == self.epoch:
                raise KeyboardInterrupt("killed")

    return KillAfterEpoch
