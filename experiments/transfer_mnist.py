"""Transfer learning on MNIST: pretrain on digits 0-4, learn 5-9 from 100 examples per class.

1. Pretrain ``lenet5_modern`` (5 classes) on all MNIST training digits 0-4.
2. Draw 100 labelled training examples of each digit 5-9 (500 in all, fixed seed) and train,
   for the same number of steps with the same optimizer:

   * (a) frozen convolutional base (c1, c3, c5), f6 + a new output layer trained
     (``replace_head`` + ``make_transfer_optimizer``), and the off-the-shelf variant:
     ``relu(c5)`` features (120-d) + logistic regression;
   * (b) fine-tuning: new output layer, conv base at 0.1x the learning rate;
   * (c) the same network from scratch on the same 500 examples.

3. Evaluate on every test digit 5-9; print a Markdown table (mean +- std over ``--repeats``
   draws of the 500 examples, one column per ``--steps`` budget) and write JSON.

Run: ``python -m experiments.transfer_mnist --data-dir /tmp/tfds --out results.json``
(about 4 minutes on 2 busy CPU cores).

Measured (lr 1e-3, 3 draws; see the JSON for the rest): at 300 steps (a) 0.933, (a') 0.937,
(b) 0.955, (c) 0.961 -- on MNIST, 100 labelled examples per class are already enough for
LeNet-5 from scratch, and features learned on 0-4 do not beat it at any budget tried.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn import data, transfer
from jaxcnn.models import create
from jaxcnn.training import create_train_state, make_train_step

MODEL, HEAD, FEATURE_LAYER = "lenet5_modern", "output", "flatten"
# The convolutional base (c1, c3, c5): frozen in (a), fine-tuned at 0.1x the lr in (b). The
# classifier (f6 and the new output layer) is trained at the full rate in both, as in the
# Keras "freeze the conv base, retrain the classifier" recipe.
CONV_BASE = "^c[135]/"


def _subset(ds, digits, mean, std):
    keep = np.isin(ds.labels, digits)
    images = data.normalize(ds.images[keep], mean, std)
    return np.asarray(images, np.float32), (ds.labels[keep] - min(digits)).astype(np.int32)


def _train(state, step, images, labels, *, steps, batch_size, seed):
    rng = np.random.default_rng(seed)
    order = np.array([], np.int64)
    for _ in range(steps):
        if order.size < batch_size:
            order = np.concatenate([order, rng.permutation(len(images))])
        idx, order = order[:batch_size], order[batch_size:]
        state, _ = step(state, {"image": images[idx], "label": labels[idx]})
    return state


def _accuracy(model, variables, images, labels, batch_size=1000):
    predict = jax.jit(lambda v, x: jnp.argmax(model.apply(v, x, train=False), -1))
    preds = [np.asarray(predict(variables, images[i:i + batch_size]))
             for i in range(0, len(images), batch_size)]
    return float(np.mean(np.concatenate(preds) == labels))


def _variables(state):
    return ({"params": state.params, "batch_stats": state.batch_stats} if state.batch_stats
            else {"params": state.params})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/tfds")
    parser.add_argument("--out", default="results.json")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 300],
                        help="training budgets (steps) on the small set; each is reported")
    parser.add_argument("--repeats", type=int, default=3,
                        help="draws of the 500 examples (and head / scratch inits)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    t0 = time.time()

    train = data.load("mnist", "train", data_dir=args.data_dir, image_size=32)
    test = data.load("mnist", "test", data_dir=args.data_dir, image_size=32)
    mean, std = train.mean, train.std
    x_pre, y_pre = _subset(train, [0, 1, 2, 3, 4], mean, std)
    x_new, y_new = _subset(train, [5, 6, 7, 8, 9], mean, std)
    x_test, y_test = _subset(test, [5, 6, 7, 8, 9], mean, std)

    # 1. pretraining on 0-4
    model = create(MODEL, num_classes=5)
    key = jax.random.PRNGKey(args.seed)
    state = create_train_state(model, optax.adam(args.lr), key, x_pre[:1])
    step = jax.jit(make_train_step())
    pre_steps = args.pretrain_epochs * len(x_pre) // 128
    state = _train(state, step, x_pre, y_pre, steps=pre_steps, batch_size=128, seed=args.seed)
    x_pre_test, y_pre_test = _subset(test, [0, 1, 2, 3, 4], mean, std)
    pre_acc = _accuracy(model, _variables(state), x_pre_test, y_pre_test)
    pretrained = _variables(state)
    print(f"pretrained on 0-4: {pre_steps} steps, test accuracy (0-4) {pre_acc:.4f} "
          f"[{time.time() - t0:.0f}s]")

    # One optimizer and one compiled step per method (tx is a static part of the state).
    params = pretrained["params"]
    methods = {"frozen_backbone": ([CONV_BASE], None), "fine_tuned": (None, [CONV_BASE])}
    txs = {m: transfer.make_transfer_optimizer(optax.adam(args.lr), params, frozen, backbone,
                                               backbone_lr_scale=0.1)
           for m, (frozen, backbone) in methods.items()}
    steps_fn = {m: jax.jit(transfer.make_transfer_train_step(frozen))
                for m, (frozen, _) in methods.items()}
    scratch_tx = optax.adam(args.lr)

    runs = []  # one dict of accuracies per (repeat, budget)
    for r in range(args.repeats):
        seed = args.seed + 1 + r
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.choice(np.flatnonzero(y_new == c), args.per_class,
                                         replace=False) for c in range(5)])
        x_few, y_few = x_new[few], y_new[few]
        # (a') off-the-shelf: conv-base features (relu(c5), 120-d) + logistic regression
        f_few = transfer.extract_features(model, pretrained, x_few, FEATURE_LAYER)
        f_test = transfer.extract_features(model, pretrained, x_test, FEATURE_LAYER)
        off_the_shelf = float(transfer.fit_linear_classifier(f_few, y_few).score(f_test, y_test))
        new_model, new_vars = transfer.replace_head(model, pretrained, 5,
                                                    jax.random.PRNGKey(seed), head=HEAD)
        for budget in args.steps:
            acc = {"off_the_shelf_logistic": off_the_shelf}
            # (a) frozen conv base and (b) fine-tuning, from the same new head
            for m, tx in txs.items():
                s = create_train_state(new_model, tx, key, x_few[:1]).replace(
                    params=new_vars["params"], opt_state=tx.init(new_vars["params"]),
                    batch_stats=new_vars.get("batch_stats", {}))
                s = _train(s, steps_fn[m], x_few, y_few, steps=budget,
                           batch_size=args.batch_size, seed=seed)
                acc[m] = _accuracy(new_model, _variables(s), x_test, y_test)
            # (c) from scratch: same network, fresh init, same data / steps / optimizer
            s = create_train_state(model, scratch_tx, jax.random.PRNGKey(1000 + seed),
                                   x_few[:1])
            s = _train(s, step, x_few, y_few, steps=budget, batch_size=args.batch_size,
                       seed=seed)
            acc["scratch"] = _accuracy(model, _variables(s), x_test, y_test)
            runs.append({"repeat": r, "steps": budget, **acc})
            print(f"repeat {r} steps {budget}: {acc} [{time.time() - t0:.0f}s]")

    names = {"frozen_backbone": "(a) frozen conv base, f6 + new head trained",
             "off_the_shelf_logistic": ("(a') off-the-shelf conv features (relu c5, 120-d) "
                                        "+ logistic regression"),
             "fine_tuned": "(b) fine-tuned (conv base lr x0.1)",
             "scratch": "(c) from scratch"}
    summary = {}
    for budget in args.steps:
        rows = [run for run in runs if run["steps"] == budget]
        summary[str(budget)] = {m: {"mean": float(np.mean([run[m] for run in rows])),
                                    "std": float(np.std([run[m] for run in rows]))}
                                for m in names}
    report = {"model": MODEL, "pretrain_steps": pre_steps, "pretrain_test_accuracy_0_4": pre_acc,
              "few_shot_examples": 5 * args.per_class, "batch_size": args.batch_size,
              "lr": args.lr, "repeats": args.repeats, "test_examples_5_9": len(x_test),
              "accuracy_5_9": summary, "runs": runs, "seconds": round(time.time() - t0, 1)}
    print(f"\nMNIST digits 5-9 from {5 * args.per_class} labelled examples "
          f"({args.per_class}/class), test on {len(x_test)} images; mean +- std over "
          f"{args.repeats} draws\n")
    print("| method | " + " | ".join(f"{b} steps" for b in args.steps) + " |")
    print("|---|" + "---|" * len(args.steps))
    for m, name in names.items():
        cells = [f"{summary[str(b)][m]['mean']:.4f} +- {summary[str(b)][m]['std']:.4f}"
                 for b in args.steps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
