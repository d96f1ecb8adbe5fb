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
three. On CPU they lower to the FFI handlers of ``onednn_conv.cc``: directly in one-device
programs and under ``pmap`` / ``shard_map`` (see :func:`_ffi_threads`), through
``custom_partitioning`` (data parallel over the batch) in a ``jit`` sharded over several
devices (see :func:`_partitioned`); on GPU and TPU to XLA's own convolution. ``vmap``
folds a batched input into the batch axis when the kernel is shared, and per-member kernels
(ensembles, per-example gradients) into the feature groups, as ``lax`` does.

Layout: NHWC activations, HWIO kernels, float32 only; :func:`available` says whether the
compiled library is loaded (``python -m jaxcnn._native.build`` builds it; ``make install``
runs that).
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
from jax._src import dispatch  # apply_primitive: the standard eager impl of a primitive
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
    if not path.exists():
        return None, (f"{path} is not built: run `python -m jaxcnn._native.build` (`make "
                      f"install` does) to build it")
    try:
        lib = ctypes.CDLL(str(path))
        for op, symbol in _SYMBOLS.items():
            jax.ffi.register_ffi_target(_TARGETS[op], jax.ffi.pycapsule(getattr(lib, symbol)),
                                        platform="cpu")
        lib.JaxcnnOnednnVersion.restype = ctypes.c_char_p
    except (OSError, AttributeError) as e:  # a stale or foreign build: fall back, say why
        return None, f"{path} could not be loaded ({e}); rebuild: python -m jaxcnn._native.build"
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


# --- XLA references: the semantics of each primitive, and its lowering off oneDNN -----------

def _forward_ref(x, k, *, strides, padding, dilation, groups, **_):
    return lax.conv_general_dilated(x, k, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=_DN, feature_group_count=groups)


def _backward_data_ref(dy, k, *, lhs_shape, **params):
    x = jax.ShapeDtypeStruct(lhs_shape, dy.dtype)
    return jax.linear_transpose(lambda x: _forward_ref(x, k, **params), x)(dy)[0]


def _backward_weights_ref(x, dy, *, rhs_shape, **params):
    k = jax.ShapeDtypeStruct(rhs_shape, x.dtype)
    return jax.linear_transpose(lambda k: _forward_ref(x, k, **params), k)(dy)[0]


conv_p = Primitive("jaxcnn_onednn_conv")
conv_backward_data_p = Primitive("jaxcnn_onednn_conv_backward_data")
conv_backward_weights_p = Primitive("jaxcnn_onednn_conv_backward_weights")
_REFS = {conv_p: _forward_ref, conv_backward_data_p: _backward_data_ref,
         conv_backward_weights_p: _backward_weights_ref}
_OPS = {conv_p: "forward", conv_backward_data_p: "backward_data",
        conv_backward_weights_p: "backward_weights"}


def _strip(params: dict) -> dict:
    # Each output primitive takes only its own shape parameter.
    return {k: v for k, v in params.items() if k not in ("lhs_shape", "rhs_shape")}


# Bilinear transposes (see the module docstring): <F(x, k), c> = <x, BD(c, k)> = <k, BW(x, c)>.
def _forward_t_x(ct, x, k, **p):
    return conv_backward_data_p.bind(ct, k, **_strip(p), lhs_shape=x.aval.shape)


def _forward_t_k(ct, x, k, **p):
    return conv_backward_weights_p.bind(x, ct, **_strip(p), rhs_shape=k.aval.shape)


def _backward_data_t_dy(ct, dy, k, **p):
    return conv_p.bind(ct, k, **_strip(p))


def _backward_data_t_k(ct, dy, k, **p):
    return conv_backward_weights_p.bind(ct, dy, **_strip(p), rhs_shape=k.aval.shape)


def _backward_weights_t_x(ct, x, dy, **p):
    return conv_backward_data_p.bind(dy, ct, **_strip(p), lhs_shape=x.aval.shape)


def _backward_weights_t_dy(ct, x, dy, **p):
    return conv_p.bind(x, ct, **_strip(p))


ad.defbilinear(conv_p, _forward_t_x, _forward_t_k)
ad.defbilinear(conv_backward_data_p, _backward_data_t_dy, _backward_data_t_k)
ad.defbilinear(conv_backward_weights_p, _backward_weights_t_x, _backward_weights_t_dy)


def _abstract_eval(prim):
    ref = _REFS[prim]

    def rule(a, b, **params):
        out = jax.eval_shape(functools.partial(ref, **params),
                             jax.ShapeDtypeStruct(a.shape, a.dtype),
                             jax.ShapeDtypeStruct(b.shape, b.dtype))
        return jax.core.ShapedArray(out.shape, out.dtype)
    return rule


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
        local = dict(params)
        if "lhs_shape" in local:
            local["lhs_shape"] = (local["lhs_shape"][0] // shards,) + local["lhs_shape"][1:]
        if prim is conv_backward_weights_p:
            def shard_fn(a, b):
                out = prim.bind(a, b, **local)
                return lax.psum(out, axes) if axes else out
            return mesh, shard_fn, whole, (batch, batch)
        return mesh, lambda a, b: prim.bind(a, b, **local), batch, (batch, whole)

    def infer(mesh, arg_shapes, result_shape):
        if prim is conv_backward_weights_p:
            return NamedSharding(mesh, P())
        return NamedSharding(mesh, P(batch_axes(mesh, arg_shapes[0].sharding) or None))

    fn.def_partition(partition, infer_sharding_from_operands=infer, sharding_rule=rule,
                     reduction_factors=reduction,
                     need_replication_factors=tuple(f for f in factors if f != "n"))
    return fn


def _cpu_lowering(prim):
    reference = mlir.lower_fun(_REFS[prim], multiple_results=False)
    target = _TARGETS[_OPS[prim]]

    def rule(ctx, a, b, *, strides, padding, dilation, groups, **shapes):
        threads = _ffi_threads(ctx) if available() else None
        if threads is None:
            params = dict(strides=strides, padding=padding, dilation=dilation, groups=groups,
                          **shapes)
            if available() and _sharded_over_devices(ctx):
                partitioned = _partitioned(prim, tuple(sorted(params.items())))
                return mlir.lower_fun(partitioned, multiple_results=False)(ctx, a, b)
            return reference(ctx, a, b, **params)
        (lo0, hi0), (lo1, hi1) = padding
        return jax.ffi.ffi_lowering(target)(
            ctx, a, b, strides=np.asarray(strides, np.int64),
            padding=np.asarray([lo0, hi0, lo1, hi1], np.int64),
            dilation=np.asarray(dilation, np.int64), groups=np.int64(groups),
            threads=np.int64(threads))
    return rule


def _to_channels(a, d: int, size: int) -> jax.Array:
    """Move the vmapped axis ``d`` (broadcast if None) next to the channels and merge them:
    ``(B, ..., C) -> (..., B * C)``, member ``b``'s channels at ``[b * C, (b + 1) * C)``."""
    a = jnp.broadcast_to(a, (size,) + a.shape) if d is None else jnp.moveaxis(a, d, 0)
    a = jnp.moveaxis(a, 0, -2)
    return a.reshape(a.shape[:-2] + (size * a.shape[-1],))


def _batch_rule(prim):
    # Operand 0 is an activation for every primitive; operand 1 is the kernel for conv_p and
    # conv_backward_data_p, and dy (an activation) for conv_backward_weights_p.
    kernel_operand = prim is not conv_backward_weights_p

    def rule(args, dims, **params):
        (a, b), (da, db) = args, dims
        p = dict(params)
        if kernel_operand and db is None:  # the kernel is shared: fold the vmapped axis into N
            n = a.shape[da]
            a = jnp.moveaxis(a, da, 0)
            merged = a.reshape((n * a.shape[1],) + a.shape[2:])
            if "lhs_shape" in p:
                p["lhs_shape"] = (n * p["lhs_shape"][0],) + tuple(p["lhs_shape"][1:])
            out = prim.bind(merged, b, **p)
            return out.reshape((n, a.shape[1]) + out.shape[1:]), 0
        # Per-member kernels (ensembles) or per-example kernel gradients: B convolutions as one
        # with B times the groups, as lax's own batching rule does (member b = groups
        # [b * G, (b + 1) * G)); oneDNN's grouped convolutions are fast, XLA's CPU ones are not.
        size = a.shape[da] if da is not None else b.shape[db]
        a, b = _to_channels(a, da, size), _to_channels(b, db, size)
        p["groups"] = params["groups"] * size
        for key in ("lhs_shape", "rhs_shape"):
            if key in p:
                p[key] = tuple(p[key][:-1]) + (size * p[key][-1],)
        out = prim.bind(a, b, **p)
        out = out.reshape(out.shape[:-1] + (size, out.shape[-1] // size))
        return jnp.moveaxis(out, -2, 0), 0
    return rule


for _prim, _ref in _REFS.items():
    _prim.def_impl(functools.partial(dispatch.apply_primitive, _prim))
    _prim.def_abstract_eval(_abstract_eval(_prim))
    mlir.register_lowering(_prim, mlir.lower_fun(_ref, multiple_results=False))
    # not cacheable: the rule looks at the devices of the program (see _ffi_threads)
    mlir.register_lowering(_prim, _cpu_lowering(_prim), platform="cpu", cacheable=False)
    batching.primitive_batchers[_prim] = _batch_rule(_prim)
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
    return conv_p.bind(x, kernel, **params)
