"""What the docstring examples (`pytest --doctest-modules prectr_tf`) find
in their namespace: a tiny simulated dataset and models, and the paths of
the public data. Tests have their own fixtures in `tests/conftest.py`."""

import os
import pathlib

import pytest
from _pytest.doctest import DoctestItem

REPO = pathlib.Path(__file__).resolve().parent
SHARED_DATA = pathlib.Path(os.environ.get("PRECTR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def doctest_world(tmp_path_factory):
    """`sim`, `data_dir`, `vocab`, `features` (a batch of 8), `model`
    (prectr_v2) and `frozen_model` (prectr_v1), both tiny and built."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from prectr_tf.data.build import BuildConfig, build_dataset
    from prectr_tf.data.pipeline import make_dataset
    from prectr_tf.data.schema import DataSchema
    from prectr_tf.data.simulator import SimulatorConfig, simulate
    from prectr_tf.layers.text_preprocessing import learn_wordpiece_vocabulary
    from prectr_tf.models.config import EncoderConfig, preset
    from prectr_tf.models.prectr_model import PRECTRModel

    sim = simulate(SimulatorConfig(num_users=60, num_requests=300, num_items=200,
                                   num_queries=30, num_candidates=20, page_size=5, seed=3))
    data_dir = str(tmp_path_factory.mktemp("doctest") / "dataset")
    build_dataset(sim.log, data_dir, DataSchema(history_length=5, context_length=5,
                                                num_item_features=4),
                  BuildConfig(eval_fraction=0.2), progress=False)
    vocab = learn_wordpiece_vocabulary(sorted(set(sim.log["query"]) | set(sim.log["item_title"])),
                                       vocabulary_size=300)
    features, _ = next(iter(make_dataset(data_dir, "train", batch_size=8, shuffle=False)))
    keras.utils.set_random_seed(0)
    small = EncoderConfig(num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32)
    models = {}
    for name in ("prectr_v2", "prectr_v1"):
        models[name] = PRECTRModel.from_dataset(data_dir, preset(name, encoder=small),
                                                wordpiece_vocabulary=vocab)
        models[name].build()
    return {"sim": sim, "data_dir": data_dir, "vocab": vocab, "features": features,
            "model": models["prectr_v2"], "frozen_model": models["prectr_v1"]}


@pytest.fixture(autouse=True)
def _doctest_names(request, tmp_path):
    if not isinstance(request.node, DoctestItem):
        return
    if (any("shared_data" in example.source for example in request.node.dtest.examples)
            and not SHARED_DATA.is_dir()):
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PRECTR_SHARED_DATA)")
    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update(request.getfixturevalue("doctest_world"), tmp=str(tmp_path),
                     shared_data=str(SHARED_DATA))
