"""The classic-filter demo: a real photograph filtered by hand-designed kernels, in one figure.

Gaussian low-pass at 3/5/7/9, Sobel and Prewitt vertical/horizontal edges, Laplacian, the Sobel
gradient magnitude and Gabor kernels at four orientations (:func:`jaxcnn.visualize.filter_bank`),
applied to scikit-learn's bundled ``china.jpg`` (offline) converted to grey:

    python -m experiments.filters_demo --out /tmp/filters.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def load_image(name: str = "china.jpg") -> np.ndarray:
    """One of scikit-learn's bundled sample photographs, as a float32 grey image in [0, 1]."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image(name).astype(np.float32) / 255.0
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("filters.png"), help="PNG to write")
    parser.add_argument("--image", default="china.jpg",
                        help="scikit-learn sample image: china.jpg or flower.jpg")
    args = parser.parse_args(argv)

    from jaxcnn.visualize import filter_bank

    path = filter_bank(load_image(args.image), args.out)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
