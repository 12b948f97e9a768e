"""`saved_model_cli` with the TF Text ops loaded.

An export tokenises in-graph with TF Text ops (WordPiece, regex split), which
the plain `saved_model_cli` binary does not register, so `run` on an export
fails with "Op type not registered 'RegexSplitWithOffsets'". This is the same
tool — the same session-based SavedModel loader TF Serving's C++ server uses —
run after `import tensorflow_text`, which registers those ops (TF Serving's
model server links TF Text's ops itself).

    python -m prectr_tf.serving.saved_model_cli show --dir EXPORT --all
    python -m prectr_tf.serving.saved_model_cli run --dir EXPORT --tag_set serve \\
        --signature_def rank --inputs 'user_id=req.npz[user_id];...'
"""

import sys


def main():
    import tensorflow_text  # noqa: F401, PLC0415  (registers the TF Text ops)
    from tensorflow.python.tools import saved_model_cli  # noqa: PLC0415

    sys.argv[0] = "saved_model_cli"
    saved_model_cli.main()


if __name__ == "__main__":
    main()
