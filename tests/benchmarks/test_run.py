"""The benchmark suite: a --quick run end to end, the twins' parameter counts, the bookkeeping."""

import doctest

import jax
import jax.numpy as jnp
import pytest

import jaxcnn
from benchmarks import _cells, host_memory, run, scaling, time_to_accuracy, torch_models
from jaxcnn import models


def test_quick_run_prints_table_with_ratios_and_keeps_the_rest_of_results(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Measured results\n\nkeep me\n\n{run.BEGIN}\nstale\n{run.END}\n\ntail\n")
    # Train cells only: each JAX cell costs ~8 s of CPU (imports, jit of init, compile).
    out = run.main(["--quick", "--no-torch", "--modes", "train", "--write", str(results)],
                   log=lambda _: None)

    rows = out["throughput"]["summary"]["rows"]
    assert [(r["model"], r["framework"]) for r in rows] == [("lenet5", "jaxcnn"),
                                                            ("lenet5", "flax")]
    for row in rows:
        m = row["train"]
        assert m["images_per_s"] > 0 and m["compile_s"] > 0 and m["gflops"] > 0, row
        assert 0 < m["peak_pct"] and "infer" not in row, row
    cells = {r["framework"]: r for r in out["throughput"]["results"]}
    expected = cells["jaxcnn"]["images_per_s"] / cells["flax"]["images_per_s"]
    assert rows[1]["train"]["ratio"] == pytest.approx(expected)
    assert rows[0]["train"]["ratio"] is None  # jaxcnn against itself
    assert all(r["params"] == 61_706 for r in out["throughput"]["results"] if "params" in r)

    table = run.throughput_table(out["throughput"]["summary"]).splitlines()
    assert table[0].startswith("| model | framework | train images/s | inference images/s |")
    assert len({line.count("|") for line in table}) == 1  # every row has every column
    assert f"**{rows[1]['train']['ratio']:.2f}**" in table[3]

    text = results.read_text()
    assert text.count(run.BEGIN) == text.count(run.END) == 1
    assert "keep me" in text and "tail" in text and "stale" not in text
    assert "\n".join(table) in text and "GFLOP/s" in text
    # and drawn next to it (benchmarks/plots.py): a quick run has the throughput table only
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["benchmark_throughput.png"]


@pytest.mark.parametrize("name", list(_cells.MODELS))
def test_torch_twins_have_the_jaxcnn_parameter_count(name):
    import torch

    spec = _cells.MODELS[name]
    model = models.create(spec.registry_name, num_classes=spec.num_classes, **spec.options)
    variables = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, *spec.shape)))
    with torch.device("meta"):  # shapes only: VGG-16 would otherwise allocate 0.5 GiB
        twin = torch_models.build(name, spec.num_classes)
    assert torch_models.count_params(twin) == jaxcnn.count_params(variables["params"])


def test_frameworks_alternate_between_repetitions():
    cells = run.plan(["lenet5", "resnet18"], 3)
    for rep in range(3):
        order = [c["framework"] for c in cells
                 if c["rep"] == rep and c.get("model") == "resnet18" and c["mode"] == "train"]
        assert sorted(order) == sorted(["jaxcnn", "flax", "torch", "torch_cl"])
        assert order[0] == ["jaxcnn", "flax", "torch", "torch_cl"][rep]
    assert all(c["framework"] in ("jaxcnn", "flax", "peak")
               for c in run.plan(["lenet5"], 1, torch=False))
    with pytest.raises(ValueError, match="unknown names"):
        run.plan(["lenet6"], 1)


def test_ratio_is_the_median_of_same_repetition_ratios():
    rng_rates = {0: (10.0, 20.0), 1: (30.0, 20.0), 2: (12.0, 8.0)}  # (jaxcnn, torch) per rep
    cells = [{"framework": "peak", "rep": 0, "gflops": 50.0}]
    for rep, rates in rng_rates.items():
        for fw, ips in zip(("jaxcnn", "torch"), rates, strict=True):
            cells.append({"framework": fw, "model": "lenet5", "mode": "train", "rep": rep,
                          "batch": 8, "params": 3, "images_per_s": ips, "step_s": 8 / ips,
                          "first_s": 1.0, "peak_rss_mib": 1.0, "flops": None})
    torch_row = run.summarize(cells)["rows"][1]
    assert torch_row["train"]["ratio"] == pytest.approx(1.5)  # median of 0.5, 1.5, 1.5
    assert torch_row["train"]["ratio_range"] == pytest.approx((0.5, 1.5))
    assert torch_row["train"]["range"] == (8.0, 20.0)
    cells[-1]["params"] = 4
    with pytest.raises(AssertionError, match="parameter counts differ"):
        run.summarize(cells)


def test_scaling_plan_rejects_a_batch_that_does_not_split():
    with pytest.raises(ValueError, match="device_batch"):
        scaling.plan("lenet5", device_counts=(1, 3), device_batch=64)


@pytest.mark.parametrize("module", [host_memory, run, scaling, time_to_accuracy, torch_models],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    # benchmarks/ is outside pytest's doctest paths; its pure examples run here.
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0
