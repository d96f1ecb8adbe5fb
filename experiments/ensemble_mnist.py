"""Ensemble of K small CNNs trained at once with ``jax.vmap`` on real MNIST (bagging).

Each member is a modern LeNet-5 (ReLU, max pooling; 61,706 parameters) with its own init and
its own bootstrap sample of the first 55,000 training images; all K train in one compiled
step (:func:`jaxcnn.ensemble.make_ensemble_train_step`). The last 5,000 training images are
held out to fit the stacking meta-classifier. Reports test accuracy of every member, their
mean, majority vote, probability average, accuracy-weighted average and stacking, as a
Markdown table and JSON::

    python experiments/ensemble_mnist.py --data-dir /tmp/tfds --members 5 --epochs 1 \\
        --out results.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn import ensemble, models
from jaxcnn.data import load, normalize

HELDOUT = 5000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="/tmp/tfds")
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--model", default="lenet5_modern")
    p.add_argument("--no-bootstrap", action="store_true",
                   help="train every member on the whole training set (own init only)")
    p.add_argument("--train-limit", type=int, default=None,
                   help="use only this many training images (smoke tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def _images(ds, limit=None):
    images, labels = ds.images[:limit], ds.labels[:limit]
    return normalize(images, ds.mean, ds.std), labels.astype(np.int32)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    train = load("mnist", "train", args.data_dir, image_size=32)
    test = load("mnist", "test", args.data_dir, image_size=32)
    x_all, y_all = _images(train)
    x_test, y_test = _images(test)
    x_held, y_held = x_all[-HELDOUT:], y_all[-HELDOUT:]
    x_train, y_train = x_all[:-HELDOUT][:args.train_limit], y_all[:-HELDOUT][:args.train_limit]
    n, k, bs = len(x_train), args.members, args.batch_size
    print(f"data loaded in {time.perf_counter() - t0:.1f} s", flush=True)

    model = models.create(args.model, num_classes=10)
    key_init, key_boot = jax.random.split(jax.random.key(args.seed))
    states = ensemble.create_ensemble_state(model, optax.adam(args.learning_rate),
                                            jax.random.split(key_init, k), x_train[:bs])
    step = jax.jit(ensemble.make_ensemble_train_step(), donate_argnums=0)
    if args.no_bootstrap:
        samples = np.tile(np.arange(n), (k, 1))
    else:
        samples = np.asarray(ensemble.bootstrap_indices(key_boot, n, k))

    rng = np.random.default_rng(args.seed)
    steps_per_epoch = n // bs
    for epoch in range(args.epochs):
        order = np.stack([s[rng.permutation(n)] for s in samples])  # (K, n) each its own order
        for s in range(steps_per_epoch):
            idx = order[:, s * bs:(s + 1) * bs]                      # (K, B)
            states, metrics = step(states, {"image": x_train[idx], "label": y_train[idx]})
            if epoch == 0 and s in (0, 50):
                jax.block_until_ready(metrics)
                print(f"step {s} done at {time.perf_counter() - t0:.1f} s", flush=True)
        print(f"epoch {epoch + 1}: train loss per member "
              f"{np.round(np.asarray(metrics['loss']), 4).tolist()}", flush=True)
    train_s = time.perf_counter() - t0

    variables = ensemble.ensemble_variables(states)
    held_logits = ensemble.predict(states.apply_fn, variables, x_held, batch_size=1000)
    test_logits = ensemble.predict(states.apply_fn, variables, x_test, batch_size=1000)
    held_probs, test_probs = jax.nn.softmax(held_logits, -1), jax.nn.softmax(test_logits, -1)

    def acc(pred):
        return float(np.mean(np.asarray(pred) == y_test))

    member_acc = [acc(jnp.argmax(lg, -1)) for lg in test_logits]
    held_acc = jnp.array([np.mean(np.asarray(jnp.argmax(lg, -1)) == y_held)
                          for lg in held_logits])
    meta = ensemble.fit_stacking(held_probs, y_held)
    results = {
        "model": args.model, "members": k, "epochs": args.epochs, "bootstrap":
            not args.no_bootstrap, "train_examples": n, "heldout_examples": HELDOUT,
        "test_examples": len(y_test), "member_accuracy": member_acc,
        "mean_member_accuracy": float(np.mean(member_acc)),
        "best_member_accuracy": float(np.max(member_acc)),
        "majority_vote": acc(ensemble.majority_vote(jnp.argmax(test_logits, -1), 10)),
        "probability_average": acc(jnp.argmax(ensemble.average_probabilities(test_logits), -1)),
        "weighted_average": acc(jnp.argmax(ensemble.weighted_average(test_logits, held_acc),
                                           -1)),
        "stacking": acc(ensemble.predict_stacking(meta, test_probs)),
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "device": str(jax.devices()[0].platform),
    }

    rows = [(f"member {i}", a) for i, a in enumerate(member_acc)]
    rows += [("mean of members", results["mean_member_accuracy"]),
             ("majority vote", results["majority_vote"]),
             ("probability average", results["probability_average"]),
             ("weighted average (held-out acc.)", results["weighted_average"]),
             ("stacking (logistic regression)", results["stacking"])]
    print(f"\n{k} x {args.model}, {args.epochs} epoch(s), bagging={not args.no_bootstrap}, "
          f"{n} training images, MNIST test set ({len(y_test)} images)\n")
    print("| classifier | test accuracy |\n|---|---|")
    for name, a in rows:
        print(f"| {name} | {100 * a:.2f}% |")
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
