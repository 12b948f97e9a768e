"""The logging policy: which candidates a request shows, in which order."""

import numpy as np


def choose_pages(levels, page_size, sharpness, rng):
    """Pick and order `page_size` of each row's candidates.

    A Plackett–Luce ranking with logits `sharpness · level`, sampled by the
    Gumbel-top-k trick: perturb each logit with standard Gumbel noise, show
    the `page_size` largest, in decreasing order. With `sharpness > 0` relevant
    items are shown more and higher (exposure bias); with 0 the page is a
    uniform random sample in random order.

    Args:
        levels: int [R, C] true relevance level of each candidate.
        page_size: P <= C.
        sharpness: the policy's preference for relevance, >= 0.
        rng: numpy `Generator`.

    Returns:
        int64 [R, P]: column indices into `levels`; column p is shown at
        position p.

    Example:
    >>> pages = choose_pages(np.array([[0, 3, 0, 0]]), 2, 50.0, np.random.default_rng(0))
    >>> int(pages[0, 0])
    1
    """
    score = sharpness * levels + rng.gumbel(size=levels.shape)
    top = np.argpartition(-score, page_size - 1, axis=1)[:, :page_size]
    order = np.argsort(-np.take_along_axis(score, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1).astype(np.int64)
