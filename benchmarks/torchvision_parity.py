"""``jaxcnn.weights.from_torchvision`` against real torchvision models: logits parity and time.

    python -m benchmarks.torchvision_parity [--models resnet50,vgg16] [--batch 2] [--size 224]

Needs ``torch`` and ``torchvision`` (not in the project's environment: torchvision pins its own
torch; use a separate virtualenv with ``pip install torch torchvision -e .``). For each
supported model: ``torchvision.models.<name>(weights=None)`` with random weights and BatchNorm
statistics calibrated on random images (:func:`tests.weights._torch_models.randomize`), its
``state_dict`` saved with ``safetensors.torch.save_file``, imported with
:func:`jaxcnn.weights.from_torchvision`, and the logits of both compared on the same random
images (NCHW for torch, NHWC for jaxcnn). Prints a Markdown table: parameters, the largest
absolute logit difference to torchvision in float32 and to torchvision run in float64 (the
exact answer, up to float64 rounding), torchvision's own float32 error against that, the
largest logit, and the times to import, to run torchvision (float32, eval, no grad) and to run
jaxcnn (first call: compilation included).

A model passes when jaxcnn and torchvision agree to 1e-4, or when jaxcnn's distance to the
float64 answer is within twice torchvision's own float32 error (deep residual networks with
random weights accumulate float32 rounding beyond 1e-4 in both frameworks: ResNet-152).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
# jaxcnn name -> (torchvision builder, builder kwargs, jaxcnn model options)
MODELS = {
    "alexnet_torchvision": ("alexnet", {}, {}),
    **{f"vgg{d}{bn}": (f"vgg{d}{bn}", {}, {}) for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    **{f"resnet{d}": (f"resnet{d}", {}, {}) for d in (18, 34, 50, 101, 152)},
    **{f"densenet{d}": (f"densenet{d}", {}, {}) for d in (121, 161, 169, 201)},
    # aux heads and transform_input as the pretrained model has them (aux imported too).
    "googlenet": ("googlenet", {"aux_logits": True, "transform_input": True,
                                "init_weights": False},
                  {"aux_logits": True, "transform_input": True}),
}


def compare(name: str, batch: int, size: int, seed: int, directory: Path) -> dict:
    import jax
    import torch
    import torchvision
    from safetensors.torch import save_file

    import jaxcnn
    from jaxcnn.weights import from_torchvision, torchvision_model
    from tests.weights._torch_models import randomize

    builder, kwargs, options = MODELS[name]
    torch.manual_seed(seed)
    model = getattr(torchvision.models, builder)(weights=None, **kwargs)
    rng = np.random.default_rng(seed)
    calibration = torch.as_tensor(rng.standard_normal((8, 3, size, size)), dtype=torch.float32)
    randomize(model, calibration, seed)
    x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
    start = time.perf_counter()
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()
    torch_s = time.perf_counter() - start
    with torch.no_grad():
        exact = copy.deepcopy(model).double()(torch.as_tensor(x).double()).numpy()

    path = directory / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    start = time.perf_counter()
    variables = from_torchvision(name, path, **options)
    import_s = time.perf_counter() - start
    ours = torchvision_model(name, **options)
    start = time.perf_counter()
    got = np.asarray(jax.jit(ours.apply)(variables, x.transpose(0, 2, 3, 1)))
    jax_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    assert params == jaxcnn.count_params(variables["params"]), name
    return {"model": name, "params": params, "diff": float(np.abs(got - expected).max()),
            "diff64": float(np.abs(got - exact).max()),
            "torch64": float(np.abs(expected - exact).max()),
            "scale": float(np.abs(expected).max()), "import_s": import_s, "torch_s": torch_s,
            "jax_s": jax_s}


def passed(row: dict) -> bool:
    return row["diff"] <= TOLERANCE or row["diff64"] <= 2 * row["torch64"]


def table(rows: list[dict]) -> str:
    lines = ["| model | parameters | max abs logit diff vs torchvision | jaxcnn vs float64 | "
             "torchvision float32 vs float64 | max abs logit | import s | torchvision s | "
             "jaxcnn s (incl. compile) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params']:,} | {r['diff']:.2e} | {r['diff64']:.2e} | "
                     f"{r['torch64']:.2e} | {r['scale']:.2f} | {r['import_s']:.1f} | "
                     f"{r['torch_s']:.1f} | {r['jax_s']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import torchvision  # noqa: F401
    except ImportError:
        sys.exit("torchvision is not installed: this benchmark needs torch and torchvision "
                 "(pip install torch torchvision) in the environment running it.")
    sys.path.insert(0, str(ROOT))   # for tests.weights._torch_models
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            rows.append(compare(name, args.batch, args.size, args.seed, Path(directory)))
            r = rows[-1]
            print(f"{name}: max abs diff {r['diff']:.2e}, vs float64 {r['diff64']:.2e} "
                  f"(torchvision's own {r['torch64']:.2e})", file=sys.stderr, flush=True)
    print(table(rows))
    failed = [r["model"] for r in rows if not passed(r)]
    if failed:
        sys.exit(f"max abs logit difference above {TOLERANCE} and above twice torchvision's "
                 f"own float32 error: {failed}")


if __name__ == "__main__":
    main()
