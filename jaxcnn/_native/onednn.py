"""oneDNN 2-D convolutions on CPU as JAX primitives, with XLA's convolution as the fallback.

Why: on x86 CPUs XLA's convolutions (and their gradients) take most of a CNN train step and are
2-3x slower than oneDNN's; with them on oneDNN a ResNet-18 (CIFAR) train step is 2.1x faster
than plain Flax's (benchmarks/RESULTS.md, "oneDNN convolutions").

Three primitives, closed under transposition so that ``grad``, ``jvp``, ``vjp``, ``hessian``
and ``linear_transpose`` all keep working::

    conv_p(x, k) -> y                  forward
    conv_backward_data_p(dy, k) -> dx  the transpose of conv_p in x
    conv_backward_weights_p(x, dy) -> dk  the transpose of conv_p in k

Each is bilinear in its two operands; the transpose of each in either operand is one of the
three. Each is *defined* by a ``lax`` computation: ``lax.conv_general_dilated`` and ``lax``'s
own transposes of it (:func:`_forward_ref` and its two siblings). Their abstract evaluation
traces that definition, so shapes, dtypes, ``vma`` and shardings are ``lax``'s; binding
inserts ``pvary`` as ``lax`` does, so gradients of replicated parameters under ``shard_map``
are global; ``jax.checkpoint`` policies are asked about ``conv_general_dilated``
(:func:`_remat_rule`), so ``dots_saveable`` saves these convolutions as it saves ``lax``'s.

Lowering: a program compiled for CPU alone calls the FFI handlers of ``onednn_conv.cc``,
directly in one-device programs and under ``pmap`` / ``shard_map`` (see
:func:`_ffi_threads`), through ``custom_partitioning`` (data parallel over the batch) in a
``jit`` sharded over several devices (see :func:`_partitioned`). Everything else, GPU and TPU,
multi-platform lowering and ``jax.export`` (whose archives must run anywhere, later), lowers
the ``lax`` definition: the HLO ``lax`` itself would give. ``vmap`` folds a batched input into
the batch axis when the kernel is shared, and per-member kernels (ensembles, per-example
gradients) into channels, as ``lax`` does, without copying an unbatched operand.
``tests/functional/test_conv_conformance.py`` checks all of this against ``lax``, as a matrix.

Layout: NHWC activations, HWIO kernels, float32 only; :func:`available` says whether the
compiled library is loaded (``pip install`` builds it in the package's build; ``status()``
says why not where it could not be built).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax._src import (
    api_util,
    dispatch,  # apply_primitive: the standard eager impl of a primitive
)
from jax._src import core as jax_core  # auto_insert_reshard: the pvary `lax` inserts
from jax._src.interpreters import partial_eval as pe  # abstract_eval_fun, the remat rule table
from jax._src.lax import convolution as lax_convolution  # lax's transposes: the references
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

__all__ = ["available", "conv", "library_path", "status", "version"]

Array = Any
_DN = ("NHWC", "HWIO", "NHWC")
_TARGETS = {"forward": "jaxcnn_onednn_conv_forward",
            "backward_data": "jaxcnn_onednn_conv_backward_data",
            "backward_weights": "jaxcnn_onednn_conv_backward_weights"}
_SYMBOLS = {"forward": "JaxcnnConvForward", "backward_data": "JaxcnnConvBackwardData",
            "backward_weights": "JaxcnnConvBackwardWeights"}
LIBRARY_NAME = "libjaxcnn_onednn.so"


def library_path() -> Path:
    """Where the compiled library is looked for: ``$JAXCNN_ONEDNN_LIBRARY`` or next to this file.

    Example:
        >>> library_path().name
        'libjaxcnn_onednn.so'
    """
    return Path(os.environ.get("JAXCNN_ONEDNN_LIBRARY", Path(__file__).with_name(LIBRARY_NAME)))


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """Load and register the library once; return (library or None, why not)."""
    if os.environ.get("JAXCNN_ONEDNN", "1") == "0":
        return None, "disabled by JAXCNN_ONEDNN=0"
    if not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"):
        return None, f"oneDNN convolutions are built for Linux x86-64 only, not {sys.platform}"
    path = library_path()
    reinstall = ("reinstall jaxcnn, which builds it (`pip install -e .` or `make install` in a "
                 "checkout; `pip install -v` shows the build)")
    if not path.exists():
        why_file = path.with_suffix(".why")  # written by the build that could not build it
        if why_file.exists():
            why = (why_file.read_text().strip().splitlines() or ["no reason recorded"])[0]
            return None, (f"{path} was not built when jaxcnn was installed: {why} (details: "
                          f"{why_file}); fix that, then {reinstall}")
        return None, f"{path} is not built: {reinstall}"
    import importlib.metadata

    try:  # libdnnl.so.3 of the onednn-cpu-gomp wheel, found through the wheel's file list: the
        # library's RUNPATH finds it in a regular install; this covers editable installs too.
        dnnl = [f for f in importlib.metadata.distribution("onednn-cpu-gomp").files or ()
                if f.name == "libdnnl.so.3"]
        if dnnl:
            ctypes.CDLL(str(dnnl[0].locate()))
    except (importlib.metadata.PackageNotFoundError, OSError):
        pass  # then the RUNPATH and the system's library path decide; a failure is said below
    try:
        lib = ctypes.CDLL(str(path))
        for op, symbol in _SYMBOLS.items():
            jax.ffi.register_ffi_target(_TARGETS[op], jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
        lib.JaxcnnOnednnVersion.restype = ctypes.c_char_p
    except (OSError, AttributeError, RuntimeError, ValueError) as e:  # fall back, say why
        fix = ("install the oneDNN runtime (pip install onednn-cpu-gomp==2023.2.0, a jaxcnn "
               "dependency on Linux x86-64)" if "libdnnl" in str(e) else
               f"a stale or foreign build: {reinstall}")
        return None, f"{path} could not be loaded ({e}); {fix}"
    return lib, ""


def available() -> bool:
    """Whether oneDNN convolutions are built and loaded (then 2-D float32 convs use them on CPU).

    Example:
        >>> isinstance(available(), bool)
        True
    """
    return _load()[0] is not None


def status() -> str:
    """One line: the oneDNN version in use, or why XLA's convolution is used instead.

    Example:
        >>> status().startswith(("oneDNN", "XLA"))
        True
    """
    lib, why = _load()
    return f"oneDNN {version()} ({library_path()})" if lib is not None else f"XLA ({why})"


def version() -> str | None:
    """The loaded oneDNN's version (``"3.2.0"``), or None when not loaded.

    Example:
        >>> version() is None or version().count(".") == 2
        True
    """
    lib = _load()[0]
    return None if lib is None else lib.JaxcnnOnednnVersion().decode()


# --- What each primitive means: lax's own convolution and lax's own transposes of it ---------
#
# Every primitive is defined by a `lax` computation (its reference). Abstract evaluation traces
# that reference, so shapes, dtypes, `vma` and shardings are exactly what `lax` would give; the
# lowering off oneDNN (GPU, TPU, `jax.export`, shapes XLA must partition) is the reference's,
# so it is the HLO that `lax.conv_general_dilated` and its gradients would produce.

def _lax_params(*, strides, padding, dilation, groups, **_) -> dict:
    """The ``conv_general_dilated_p`` parameters of the forward convolution."""
    return dict(window_strides=tuple(strides), padding=tuple(padding), lhs_dilation=(1, 1),
                rhs_dilation=tuple(dilation),
                dimension_numbers=lax.conv_dimension_numbers((1,) * 4, (1,) * 4, _DN),
                feature_group_count=groups, batch_group_count=1, precision=None,
                preferred_element_type=None, out_sharding=None)


def _forward_ref(x, k, **params):
    return lax.conv_general_dilated_p.bind(x, k, **_lax_params(**params))


def _backward_data_ref(dy, k, *, lhs_shape, lhs_sharding, **params):
    x = ad.UndefinedPrimal(jax.typeof(dy).update(shape=lhs_shape, sharding=lhs_sharding))
    return lax_convolution._conv_general_dilated_transpose_lhs(dy, x, k, **_lax_params(**params))


def _backward_weights_ref(x, dy, *, rhs_shape, rhs_sharding, **params):
    k = ad.UndefinedPrimal(jax.typeof(dy).update(shape=rhs_shape, sharding=rhs_sharding))
    return lax_convolution._conv_general_dilated_transpose_rhs(dy, x, k, **_lax_params(**params))


conv_p = Primitive("jaxcnn_onednn_conv")
conv_backward_data_p = Primitive("jaxcnn_onednn_conv_backward_data")
conv_backward_weights_p = Primitive("jaxcnn_onednn_conv_backward_weights")
_REFS = {conv_p: _forward_ref, conv_backward_data_p: _backward_data_ref,
         conv_backward_weights_p: _backward_weights_ref}
_OPS = {conv_p: "forward", conv_backward_data_p: "backward_data",
        conv_backward_weights_p: "backward_weights"}
_SHAPE_PARAMS = ("lhs_shape", "lhs_sharding", "rhs_shape", "rhs_sharding")


def _bind(prim, a, b, **params):
    # As `lax.conv_general_dilated` does: an operand that is invariant over a manual mesh axis
    # the other one varies over gets a `pvary` first, whose transpose (a `psum`) is what makes
    # gradients of replicated parameters under `shard_map` global.
    a, b = jax_core.auto_insert_reshard(a, b)
    return prim.bind(a, b, **params)


def _strip(params: dict) -> dict:
    # Each output primitive takes only its own shape parameters.
    return {k: v for k, v in params.items() if k not in _SHAPE_PARAMS}


def _like(aval, prefix: str) -> dict:
    return {f"{prefix}_shape": tuple(aval.shape), f"{prefix}_sharding": aval.sharding}


# Bilinear transposes (see the module docstring): <F(x, k), c> = <x, BD(c, k)> = <k, BW(x, c)>.
def _forward_t_x(ct, x, k, **p):
    return _bind(conv_backward_data_p, ct, k, **_strip(p), **_like(x.aval, "lhs"))


def _forward_t_k(ct, x, k, **p):
    return _bind(conv_backward_weights_p, x, ct, **_strip(p), **_like(k.aval, "rhs"))


def _backward_data_t_dy(ct, dy, k, **p):
    return _bind(conv_p, ct, k, **_strip(p))


def _backward_data_t_k(ct, dy, k, **p):
    return _bind(conv_backward_weights_p, ct, dy, **_strip(p), **_like(k.aval, "rhs"))


def _backward_weights_t_x(ct, x, dy, **p):
    return _bind(conv_backward_data_p, dy, ct, **_strip(p), **_like(x.aval, "lhs"))


def _backward_weights_t_dy(ct, x, dy, **p):
    return _bind(conv_p, x, ct, **_strip(p))


ad.defbilinear(conv_p, _forward_t_x, _forward_t_k)
ad.defbilinear(conv_backward_data_p, _backward_data_t_dy, _backward_data_t_k)
ad.defbilinear(conv_backward_weights_p, _backward_weights_t_x, _backward_weights_t_dy)


@functools.lru_cache(maxsize=4096)
def _abstract_eval_cached(prim, a, b, items: tuple):
    ref = functools.partial(_REFS[prim], **dict(items))
    info = api_util.debug_info(prim.name, ref, (a, b), {})
    return pe.abstract_eval_fun(lambda a, b: [ref(a, b)], a, b, debug_info=info)[0]


def _abstract_eval(prim):
    def rule(a, b, **params):
        return _abstract_eval_cached(prim, a, b, tuple(sorted(params.items())))
    return rule


def _remat_rule(saveable, unks_in, inst_in, eqn):
    """``jax.checkpoint`` asks its policy about ``lax.conv_general_dilated``, not this primitive.

    So a policy that saves convolutions (``dots_saveable``, ``checkpoint_dots``) saves these
    too, and every other named policy treats them as it treats ``lax``'s. This is the default
    rule of ``partial_eval_jaxpr_custom`` with the question asked in ``lax``'s terms.
    """
    residuals = [v for v, inst in zip(eqn.invars, inst_in, strict=True)
                 if isinstance(v, jax_core.Var) and not inst]
    if any(unks_in):
        return None, eqn, [True], [True], residuals
    avals = [v.aval for v in eqn.invars]
    policy = pe.ensure_enum(saveable(lax.conv_general_dilated_p, *avals,
                                     **_lax_params(**eqn.params)))
    if isinstance(policy, pe.RecomputeType):
        return eqn, eqn, [False], [True], residuals
    # Saveable, or Offloadable: these primitives only run on CPU, whose device memory is
    # host memory, so there is nowhere to offload to.
    return eqn, None, [False], [False], []


def _cores() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))


def _ffi_threads(ctx) -> int | None:
    """OpenMP threads per oneDNN call in this program, or None to use XLA's convolution.

    One-device programs use every core. Under ``pmap`` and ``shard_map`` (every mesh axis
    manual) each device runs its own program on its own thread, so the cores are shared out:
    unshared, with more devices than cores (CPU tests force 8), the OpenMP teams starve
    each other and XLA's collectives time out. None for a ``jit`` partitioned over several
    devices (automatic axes): XLA's partitioner cannot split an opaque call, so that case
    goes through :func:`_partitioned`.
    """
    from jax._src import sharding_impls  # private: the only way to see the partitioning

    axis_context = ctx.module_context.axis_context
    if isinstance(axis_context, sharding_impls.ShardingContext):
        return _cores() if axis_context.num_devices == 1 else None
    if isinstance(axis_context, sharding_impls.SPMDAxisContext):
        mesh = axis_context.mesh
        if mesh.size == 1:
            return _cores()
        if set(axis_context.manual_axes) != set(mesh.axis_names):
            return None
        try:  # devices of this process (multi-host meshes span several)
            local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
        except AttributeError:  # an abstract mesh
            local = mesh.size
        return max(1, _cores() // max(1, local))
    return None


def _sharded_over_devices(ctx) -> bool:
    from jax._src import sharding_impls

    axis_context = ctx.module_context.axis_context
    return (isinstance(axis_context, sharding_impls.ShardingContext)
            and axis_context.num_devices > 1)


# Sharding rules (Shardy's einsum-like notation): the batch factor ``n`` may be sharded, every
# other dimension is gathered; for the kernel gradient ``n`` is summed over (all-reduced).
_RULES = {"forward": ("n h w c, k l i o -> n p q o", ()),
          "backward_data": ("n p q o, k l i o -> n h w c", ()),
          "backward_weights": ("n h w c, n p q o -> k l i o", ("n",))}


@functools.cache
def _partitioned(prim, items: tuple):
    """``prim`` for a ``jit`` over several devices: data-parallel over the batch axis.

    XLA's partitioner cannot split an opaque call; ``custom_partitioning`` tells it how: each
    device runs oneDNN on its shard of the batch (kernel replicated), and the kernel gradient
    is summed over the devices (the batch axis of the input decides; other dimensions are
    gathered). Its unpartitioned form, used by XLA only for shapes, is XLA's convolution.
    """
    from jax.experimental.custom_partitioning import custom_partitioning
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    params = dict(items)
    reference = functools.partial(_REFS[prim], **params)
    fn = custom_partitioning(lambda a, b: reference(a, b))
    rule, reduction = _RULES[_OPS[prim]]
    # in order of first appearance: Shardy wants the special factors sorted by index
    factors = list(dict.fromkeys(rule.replace(",", " ").replace("->", " ").split()))

    def batch_axes(mesh, sharding) -> tuple[str, ...]:
        spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
        first = spec[0] if spec else None
        axes = () if first is None else (first,) if isinstance(first, str) else tuple(first)
        return tuple(a for a in axes if mesh.shape[a] > 1)

    def partition(mesh, arg_shapes, result_shape):
        axes = batch_axes(mesh, arg_shapes[0].sharding)
        shards = int(np.prod([mesh.shape[a] for a in axes])) if axes else 1
        batch = NamedSharding(mesh, P(axes or None))
        whole = NamedSharding(mesh, P())
        def shard_fn(a, b):
            # Per device: the local batch, and the primal's type as seen on one device.
            local = dict(params)
            if "lhs_shape" in local:
                local["lhs_shape"] = (local["lhs_shape"][0] // shards,) + local["lhs_shape"][1:]
                local["lhs_sharding"] = jax.typeof(a).sharding
            if "rhs_shape" in local:
                local["rhs_sharding"] = jax.typeof(a).sharding.update(spec=P())
            out = prim.bind(a, b, **local)
            if prim is conv_backward_weights_p and axes:
                out = lax.psum(out, axes)
            return out

        if prim is conv_backward_weights_p:
            return mesh, shard_fn, whole, (batch, batch)
        return mesh, shard_fn, batch, (batch, whole)

    def infer(mesh, arg_shapes, result_shape):
        if prim is conv_backward_weights_p:
            return NamedSharding(mesh, P())
        return NamedSharding(mesh, P(batch_axes(mesh, arg_shapes[0].sharding) or None))

    fn.def_partition(partition, infer_sharding_from_operands=infer, sharding_rule=rule,
                     reduction_factors=reduction,
                     need_replication_factors=tuple(f for f in factors if f != "n"))
    return fn


def _geometry(prim, ctx) -> tuple[tuple, tuple, tuple]:
    """The shapes of (x, kernel, y) of the convolution a primitive call belongs to."""
    ins, outs = [a.shape for a in ctx.avals_in], [a.shape for a in ctx.avals_out]
    if prim is conv_p:
        return ins[0], ins[1], outs[0]
    if prim is conv_backward_data_p:
        return outs[0], ins[1], ins[0]
    return ins[0], outs[0], ins[1]


def _covered(x_shape, k_shape, y_shape, strides, padding, dilation):
    """``(rows and columns of x the windows read, their padding)`` when some trailing ones are
    read by no window (a 1x1 stride-2 convolution of an even size, say), else None.

    oneDNN 3.2 is given only inputs that its windows cover exactly: with trailing input that no
    window reads, its kernel-gradient kernels for small channel counts return wrong values on
    some calls (a 1x1 stride-2 kernel gradient of 2x8x8x4 -> 8: about half of the calls).
    Those rows and columns add nothing to any output or kernel gradient, and get a zero input
    gradient, so they are cropped off before oneDNN sees them. (A strided 1x1 convolution,
    the case above, is subsampled instead (:func:`_subsampled`), which covers it exactly.)
    """
    sizes, pads = [], []
    for i in range(2):
        size, (lo, hi) = x_shape[1 + i], padding[i]
        used = (y_shape[1 + i] - 1) * strides[i] + (k_shape[i] - 1) * dilation[i] + 1 - lo
        sizes.append(used if 0 < used < size else size)
        pads.append((lo, 0) if 0 < used < size else (lo, hi))
    return None if tuple(sizes) == tuple(x_shape[1:3]) else (tuple(sizes), tuple(pads))


def _subsampled(x_shape, k_shape, y_shape, strides, padding) -> bool:
    """Whether the convolution is a 1x1 kernel at a stride > 1 with no leading padding (ResNet's
    projection shortcut): then it reads only every stride-th row and column of x, and is the
    same 1x1 convolution at stride 1 of those rows and columns (:func:`_on_rows_read`)."""
    return (tuple(k_shape[:2]) == (1, 1) and max(strides) > 1
            and all(lo == 0 for lo, _ in padding)
            and all((y_shape[1 + i] - 1) * strides[i] < x_shape[1 + i] for i in range(2)))


def _on_rows_read(prim, x_shape, stops, steps, a, b, **params):
    """``prim`` on ``x[:, :stops[0]:steps[0], :stops[1]:steps[1]]``, its result as on all of x.

    Two uses. A crop (steps 1, see :func:`_covered`): the trailing rows and columns that no
    window reads. A subsample (see :func:`_subsampled`): a strided 1x1 convolution as the
    same one at stride 1. oneDNN's strided 1x1 kernels read (kernel gradient) or write
    (input gradient, zeros in 3 of 4 places) all of x; subsampled, XLA slices x once, fused
    into the producer of x, into a quarter-size array that the backward pass keeps instead of
    x, and an interior pad that XLA fuses into its consumer scatters the input gradient back.
    ResNet-18/CIFAR, batch 128, its three shortcuts: oneDNN's time per train step 30.7 -> 19.9
    ms (``ONEDNN_VERBOSE=profile_exec``), 11k fewer page faults per step at glibc's defaults.
    """
    (n, h, w, c), (r, q), (s0, s1) = x_shape, stops, steps
    if prim is conv_backward_data_p:
        lhs_shape = (n, (r - 1) // s0 + 1, (q - 1) // s1 + 1, c)
        dx = prim.bind(a, b, **{**params, "lhs_shape": lhs_shape})
        return lax.pad(dx, np.zeros((), dx.dtype), ((0, 0, 0), (0, h - r, s0 - 1),
                                                    (0, w - q, s1 - 1), (0, 0, 0)))
    return prim.bind(lax.slice(a, (0, 0, 0, 0), (n, r, q, c), (1, s0, s1, 1)), b, **params)


def _lowering(prim):
    reference = mlir.lower_fun(_REFS[prim], multiple_results=False)
    target = _TARGETS[_OPS[prim]]

    def rule(ctx, a, b, *, strides, padding, dilation, groups, **shapes):
        # `jax.export` archives the program for any platform and JAX version: XLA's
        # convolution, which has compatibility guarantees that this library's calls don't.
        # Only a program compiled for CPU alone calls oneDNN: one lowered for several
        # platforms at once gets XLA's convolution in every branch.
        native = (available() and ctx.module_context.platforms == ("cpu",)
                  and not ctx.module_context.lowering_parameters.for_export)
        threads = _ffi_threads(ctx) if native else None
        if threads is None:
            params = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                          **shapes)
            if native and _sharded_over_devices(ctx):
                partitioned = _partitioned(prim, tuple(sorted(params.items())))
                return mlir.lower_fun(partitioned, multiple_results=False)(ctx, a, b)
            return reference(ctx, a, b, **params)
        x_shape, k_shape, y_shape = _geometry(prim, ctx)

        def on_rows_read(stops, steps, **conv):
            fun = functools.partial(_on_rows_read, prim, x_shape, stops, steps)
            return mlir.lower_fun(fun, multiple_results=False)(
                ctx, a, b, dilation=dilation, groups=groups, **shapes, **conv)

        if _subsampled(x_shape, k_shape, y_shape, strides, padding):
            stops = tuple((y_shape[1 + i] - 1) * strides[i] + 1 for i in range(2))
            return on_rows_read(stops, strides, strides=(1, 1), padding=((0, 0), (0, 0)))
        covered = _covered(x_shape, k_shape, y_shape, strides, padding, dilation)
        if covered is not None:
            return on_rows_read(covered[0], (1, 1), strides=strides, padding=covered[1])
        (lo0, hi0), (lo1, hi1) = padding
        return jax.ffi.ffi_lowering(target)(
            ctx, a, b, strides=np.asarray(strides, np.int64),
            padding=np.asarray([lo0, hi0, lo1, hi1], np.int64),
            dilation=np.asarray(dilation, np.int64), groups=np.int64(groups),
            threads=np.int64(threads))
    return rule


def _into(a, d: int, axis: int, groups: int) -> jax.Array:
    """Merge the vmapped axis ``d`` of ``a`` into its axis ``axis`` (counted without ``d``),
    inside each of that axis's ``groups``: ``(B, ..., G * R, ...) -> (..., G * B * R, ...)``,
    member ``b`` of group ``g`` at ``[(g * B + b) * R, (g * B + b + 1) * R)``."""
    a = jnp.moveaxis(a, d, 0)
    i = axis % (a.ndim - 1) + 1
    a = a.reshape(a.shape[:i] + (groups, a.shape[i] // groups) + a.shape[i + 1:])
    a = jnp.moveaxis(a, 0, i)
    return a.reshape(a.shape[:i - 1] + (-1,) + a.shape[i + 2:])


def _out_of(a, size: int, axis: int, groups: int) -> jax.Array:
    """The inverse of :func:`_into`: the members of axis ``axis`` become a leading axis."""
    i = axis % a.ndim
    a = a.reshape(a.shape[:i] + (groups, size, a.shape[i] // (groups * size)) + a.shape[i + 1:])
    a = jnp.moveaxis(a, i + 1, 0)
    return a.reshape(a.shape[:i + 1] + (-1,) + a.shape[i + 3:])


def _scaled(shape: tuple, axis: int, size: int) -> tuple:
    shape = list(shape)
    shape[axis] *= size
    return tuple(shape)


def _batch_rule(prim):
    """vmap as ``lax`` batches a convolution: never a loop, never a copy of an unbatched operand.

    A batched activation with a shared kernel folds the members into the batch axis N. A
    batched kernel (ensembles, per-example gradients) folds the members into channels: with
    one shared input they become more output channels of each group, as ``lax`` does; with a
    batched input too they become more feature groups (oneDNN's grouped convolutions are fast,
    XLA's CPU ones are not).
    """
    def rule(args, dims, **params):
        (a, b), (da, db) = args, dims
        p, g = dict(params), params["groups"]
        size = a.shape[da] if da is not None else b.shape[db]
        if prim is not conv_backward_weights_p and db is None:  # shared kernel: members -> N
            a = jnp.moveaxis(a, da, 0)
            n = a.shape[1]
            if prim is conv_backward_data_p:
                p["lhs_shape"] = _scaled(p["lhs_shape"], 0, size)
            out = _bind(prim, a.reshape((size * n,) + a.shape[2:]), b, **p)
            return out.reshape((size, n) + out.shape[1:]), 0
        if da is not None and db is not None:  # members -> feature groups
            p["groups"] = g * size
            for key, axis in (("lhs_shape", -1), ("rhs_shape", -1)):
                if key in p:
                    p[key] = _scaled(p[key], axis, size)
            out = _bind(prim, _into(a, da, -1, 1), _into(b, db, -1, 1), **p)
            return _out_of(out, size, -1, 1), 0
        if prim is conv_p:  # one input, per-member kernels: members -> output channels
            return _out_of(_bind(prim, a, _into(b, db, -1, g), **p), size, -1, g), 0
        if prim is conv_backward_data_p:  # one dy, per-member kernels: members -> input channels
            p["lhs_shape"] = _scaled(p["lhs_shape"], -1, size)
            return _out_of(_bind(prim, a, _into(b, db, -2, 1), **p), size, -1, g), 0
        if da is None:  # kernel gradients of one x against per-member dy
            p["rhs_shape"] = _scaled(p["rhs_shape"], -1, size)
            return _out_of(_bind(prim, a, _into(b, db, -1, g), **p), size, -1, g), 0
        p["rhs_shape"] = _scaled(p["rhs_shape"], -2, size)  # per-member x against one dy
        return _out_of(_bind(prim, _into(a, da, -1, g), b, **p), size, -2, 1), 0
    return rule


for _prim, _ref in _REFS.items():
    _prim.def_impl(functools.partial(dispatch.apply_primitive, _prim))
    _prim.def_abstract_eval(_abstract_eval(_prim))
    # One rule for every platform, deciding inside (see _lowering): a CPU-specific rule beside
    # a default one makes a multi-platform `jax.export` fail in JAX's per-platform lowering.
    # Not cacheable: the rule looks at the devices of the program (see _ffi_threads).
    mlir.register_lowering(_prim, _lowering(_prim), cacheable=False)
    batching.primitive_batchers[_prim] = _batch_rule(_prim)
    pe.partial_eval_jaxpr_custom_rules[_prim] = _remat_rule
    # the lowering needs the program's devices (custom_partitioning), as cuDNN attention does
    dispatch.prim_requires_devices_during_lowering.add(_prim)


def conv(x: Array, kernel: Array, strides: tuple[int, int], padding: tuple, dilation:
         tuple[int, int] = (1, 1), groups: int = 1) -> Array:
    """2-D float32 convolution through oneDNN on CPU (XLA elsewhere); ``lax`` semantics.

    Equal to ``lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)`` up to float32
    rounding, with every JAX transformation. Inputs are not checked here:
    :func:`jaxcnn.functional.conv` checks them and calls this.

    Args:
        x: ``(N, H, W, C)`` float32.
        kernel: ``(KH, KW, C // groups, O)`` float32.
        strides: two ints >= 1.
        padding: two ``(low, high)`` pairs of ints >= 0.
        dilation: two ints >= 1 (kernel dilation).
        groups: feature groups.

    Example:
        >>> import jax.numpy as jnp
        >>> conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 5)), (1, 1), ((1, 1), (1, 1))).shape
        (1, 4, 4, 5)
    """
    params = dict(strides=tuple(int(s) for s in strides),
                  padding=tuple((int(lo), int(hi)) for lo, hi in padding),
                  dilation=tuple(int(d) for d in dilation), groups=int(groups))
    return _bind(conv_p, x, kernel, **params)


# Register the FFI targets when the module is imported (a no-op where the library is missing):
# a compiled program read back from a serialized executable or from JAX's persistent cache
# calls them without tracing anything of jaxcnn first.
_load()
