"""Affine maps ``y = M x + b`` of one sample: a small graph of exact linear steps.

:func:`convmat.from_torch` (and later readers of other frameworks) turns a model into
an :class:`AffineMap`: a graph whose nodes are *steps* (one module or function each:
a convolution, a resize, a gather, a diagonal scale, ...), *sums* (residual
connections, ``a − b``, constants added) and *gathers* (``cat``, ``view``, ``permute``,
padding, slicing: every output element is one input element or a constant).

Every step knows four things about its linear part, from one description:
``apply`` (a batch through the fast path), ``adjoint`` (a batch through the
transpose), ``nnz`` (its stored entries, by arithmetic, before anything is built)
and ``matrix`` (the ``csr_array``). The map's matrix is the graph multiplied out,
its operator is the graph run forwards (``matvec``) and backwards (``rmatvec``,
reverse accumulation), and its offset is the graph run on a zero input.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from convmat._args import TensorInput, as_int, numeric_array
from convmat._matrix import DEFAULT_MAX_BYTES, _index_dtype, check_max_bytes, human_bytes

Array = np.ndarray[Any, Any]
Shape = tuple[int, ...]

_ALTERNATIVE = "the matrix-free .operator"


def csr_bytes(nnz: int, shape: tuple[int, int], dtype: Any) -> int:
    """Bytes of a CSR matrix: values, column indices and row pointers."""
    index = np.dtype(_index_dtype(nnz, shape)).itemsize
    return int(nnz * (np.dtype(dtype).itemsize + index) + (shape[0] + 1) * index)


def _flat(x: Array, shape: Shape) -> Array:
    """A batch ``(K, *shape)`` as ``(K, ∏shape)``."""
    return x.reshape(x.shape[0], math.prod(shape))


def _rows_times(matrix: sp.csr_array, x: Array) -> Array:
    """``matrix @ x[k]`` for every row ``x[k]`` of a batch ``(K, n)``."""
    return np.asarray((matrix @ x.T).T)


# ----------------------------------------------------------------------------- steps


class Step:
    """One affine step ``y = L x + offset`` from ``input_shape`` to ``output_shape``.

    Subclasses give the linear part four ways (``apply``, ``adjoint``, ``nnz``,
    ``matrix``); ``offset`` is an array of ``output_shape`` or ``None``.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        input_shape: Shape,
        output_shape: Shape,
        dtype: Any,
        offset: Array | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)
        self.dtype = np.dtype(dtype)
        if offset is not None:
            offset = np.broadcast_to(np.asarray(offset, self.dtype), self.output_shape)
        self.offset = offset
        # The layer's geometry as convmat.stack_overlap reads it, for spatial layers.
        self.spec: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (math.prod(self.output_shape), math.prod(self.input_shape))

    def apply(self, x: Array) -> Array:
        """The linear part on a batch ``(K, *input_shape)`` → ``(K, *output_shape)``."""
        raise NotImplementedError

    def adjoint(self, y: Array) -> Array:
        """The adjoint (conjugate transpose) on a batch ``(K, *output_shape)``."""
        raise NotImplementedError

    def nnz(self) -> int:
        """Stored entries of the matrix, counted without building it."""
        raise NotImplementedError

    def build(self) -> sp.csr_array:
        raise NotImplementedError

    def matrix(self, max_bytes: Any = DEFAULT_MAX_BYTES) -> sp.csr_array:
        """The linear part as a ``csr_array``, refused before building when too big."""
        check_max_bytes(
            self.nnz(), self.shape, self.dtype, max_bytes, f"{self.kind} matrix", _ALTERNATIVE
        )
        return self.build()


class MatrixStep(Step):
    """A step given by its (small) sparse matrix."""

    def __init__(
        self,
        name: str,
        kind: str,
        input_shape: Shape,
        output_shape: Shape,
        matrix: sp.csr_array,
        offset: Array | None = None,
    ) -> None:
        super().__init__(name, kind, input_shape, output_shape, matrix.dtype, offset)
        self._matrix = sp.csr_array(matrix)

    def apply(self, x: Array) -> Array:
        y = _rows_times(self._matrix, _flat(x, self.input_shape))
        return y.reshape(len(x), *self.output_shape)

    def adjoint(self, y: Array) -> Array:
        x = _rows_times(self._matrix.T.conj(), _flat(y, self.output_shape))
        return x.reshape(len(y), *self.input_shape)

    def nnz(self) -> int:
        return int(self._matrix.nnz)

    def build(self) -> sp.csr_array:
        return self._matrix


class OperatorStep(Step):
    """A step whose products run a matrix-free operator (a convolution's fast path).

    ``run(x, adjoint)`` takes a batch of flattened samples ``(K, n)``; ``count`` and
    ``build`` give the stored entries and the matrix.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        input_shape: Shape,
        output_shape: Shape,
        dtype: Any,
        run: Callable[[Array, bool], Array],
        count: Callable[[], int],
        build: Callable[[], sp.csr_array],
        offset: Array | None = None,
    ) -> None:
        super().__init__(name, kind, input_shape, output_shape, dtype, offset)
        self._run, self._count, self._build = run, count, build

    def apply(self, x: Array) -> Array:
        y = self._run(_flat(x, self.input_shape), False)
        return y.reshape(len(x), *self.output_shape)

    def adjoint(self, y: Array) -> Array:
        x = self._run(_flat(y, self.output_shape), True)
        return x.reshape(len(y), *self.input_shape)

    def nnz(self) -> int:
        return self._count()

    def build(self) -> sp.csr_array:
        return self._build()


class PlaneStep(Step):
    """One plane's matrix ``P`` applied to every leading plane: the matrix is ``I ⊗ P``.

    Resizes and poolings act on each channel plane alike: ``input_shape`` is
    ``(*lead, *spatial)`` with ``P`` of shape ``(∏out_spatial, ∏spatial)``.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        input_shape: Shape,
        output_shape: Shape,
        plane: sp.csr_array,
        offset: Array | None = None,
    ) -> None:
        super().__init__(name, kind, input_shape, output_shape, plane.dtype, offset)
        self._plane = sp.csr_array(plane)
        self._planes = self.shape[1] // plane.shape[1]

    def apply(self, x: Array) -> Array:
        p = _rows_times(self._plane, x.reshape(-1, self._plane.shape[1]))
        return p.reshape(len(x), *self.output_shape)

    def adjoint(self, y: Array) -> Array:
        p = _rows_times(self._plane.T.conj(), y.reshape(-1, self._plane.shape[0]))
        return p.reshape(len(y), *self.input_shape)

    def nnz(self) -> int:
        return int(self._plane.nnz) * int(self._planes)

    def build(self) -> sp.csr_array:
        return sp.csr_array(
            sp.kron(sp.eye_array(self._planes, dtype=self.dtype), self._plane, format="csr")
        )


class DiagStep(Step):
    """An elementwise scale: ``y = d ⊙ x`` with ``d`` broadcast to the sample shape."""

    def __init__(
        self,
        name: str,
        kind: str,
        shape: Shape,
        scale: Any,
        offset: Array | None = None,
        dtype: Any = None,
    ) -> None:
        d = np.asarray(scale)
        super().__init__(name, kind, shape, shape, d.dtype if dtype is None else dtype, offset)
        self._scale = np.broadcast_to(d.astype(self.dtype), shape)

    def apply(self, x: Array) -> Array:
        return np.asarray(x * self._scale)

    def adjoint(self, y: Array) -> Array:
        return np.asarray(y * self._scale.conj())

    def nnz(self) -> int:
        return int(np.count_nonzero(self._scale))

    def build(self) -> sp.csr_array:
        d = self._scale.reshape(-1)
        keep = np.flatnonzero(d)
        n = d.size
        idx = _index_dtype(keep.size, (n, n))
        indptr = np.zeros(n + 1, idx)
        np.cumsum(d != 0, out=indptr[1:])
        return sp.csr_array((d[keep], keep.astype(idx), indptr), shape=(n, n))


class DenseLastAxisStep(Step):
    """A dense matrix ``W`` on the last axis (``torch.nn.Linear``): ``y[..., :] = W x[..., :]``."""

    def __init__(
        self, name: str, kind: str, input_shape: Shape, weight: Array, offset: Array | None = None
    ) -> None:
        out_shape = (*input_shape[:-1], weight.shape[0])
        super().__init__(name, kind, input_shape, out_shape, weight.dtype, offset)
        self._w = weight

    def apply(self, x: Array) -> Array:
        return np.asarray(x @ self._w.T)

    def adjoint(self, y: Array) -> Array:
        return np.asarray(y @ self._w.conj())

    def nnz(self) -> int:
        lead = math.prod(self.input_shape[:-1])
        return lead * int(np.count_nonzero(self._w))

    def build(self) -> sp.csr_array:
        lead = math.prod(self.input_shape[:-1])
        block = sp.csr_array(self._w)
        if lead == 1:
            return block
        return sp.csr_array(sp.kron(sp.eye_array(lead, dtype=self.dtype), block, format="csr"))


class GroupNormJacobian(Step):
    """The Jacobian of a normalisation at one input ``z``: per group, then an affine scale.

    The sample, flattened in C order, is cut into ``groups`` consecutive blocks of
    ``n`` entries (GroupNorm: channel groups; InstanceNorm: channels; LayerNorm: the
    normalised trailing axes). With ``x̂ = (z − μ)/σ`` per block,
    ``J v = γ ⊙ (v − mean(v) − x̂ · mean(x̂ ⊙ v)) / σ``: dense within each block.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        shape: Shape,
        z: Array,
        groups: int,
        eps: float,
        gamma: Array,
        offset: Array | None = None,
    ) -> None:
        super().__init__(name, kind, shape, shape, z.dtype, offset)
        blocks = z.reshape(groups, -1).astype(np.float64)
        mean = blocks.mean(axis=1, keepdims=True)
        var = ((blocks - mean) ** 2).mean(axis=1, keepdims=True)
        self._sigma = np.sqrt(var + eps)
        self._xhat = (blocks - mean) / self._sigma
        self._gamma = np.broadcast_to(np.asarray(gamma, np.float64), shape).reshape(groups, -1)
        self._groups = groups

    def _core(self, v: Array) -> Array:
        b = v.reshape(len(v), self._groups, -1).astype(np.float64)
        b = b - b.mean(axis=2, keepdims=True)
        b = b - self._xhat * (self._xhat * b).mean(axis=2, keepdims=True)
        return np.asarray(b / self._sigma)

    def apply(self, x: Array) -> Array:
        y = self._gamma * self._core(x)
        return y.astype(self.dtype).reshape(len(x), *self.output_shape)

    def adjoint(self, y: Array) -> Array:
        v = (y.reshape(len(y), self._groups, -1) * self._gamma).reshape(len(y), -1)
        return self._core(v).astype(self.dtype).reshape(len(y), *self.input_shape)

    def nnz(self) -> int:
        n = self.shape[0] // self._groups
        return self._groups * n * n

    def build(self) -> sp.csr_array:
        g, n = self._groups, self.shape[0] // self._groups
        eye = np.eye(n)
        dense = (eye - 1.0 / n)[None] - self._xhat[:, :, None] * self._xhat[:, None, :] / n
        dense = dense / self._sigma[:, :, None] * self._gamma[:, :, None]
        size = g * n
        idx = _index_dtype(g * n * n, (size, size))
        cols = (np.arange(g)[:, None, None] * n + np.arange(n)[None, None, :]).repeat(n, axis=1)
        indptr = np.arange(size + 1, dtype=idx) * n
        return sp.csr_array(
            (dense.astype(self.dtype).reshape(-1), cols.reshape(-1).astype(idx), indptr),
            shape=(size, size),
        )


class MapStep(Step):
    """A whole :class:`AffineMap` used as one step (composition), or its adjoint."""

    def __init__(self, amap: AffineMap, *, adjoint: bool = False) -> None:
        shapes = (
            (amap.output_shape, amap.input_shape)
            if adjoint
            else (amap.input_shape, amap.output_shape)
        )
        name = "T" if adjoint else ""
        super().__init__(
            name,
            "AffineMap",
            *shapes,
            amap.dtype,
            None if adjoint else amap.offset.reshape(amap.output_shape),
        )
        self._map, self._adjoint = amap, adjoint

    def apply(self, x: Array) -> Array:
        m = self._map
        return m._linear(x, adjoint=True) if self._adjoint else m._linear(x, adjoint=False)

    def adjoint(self, y: Array) -> Array:
        m = self._map
        return m._linear(y, adjoint=False) if self._adjoint else m._linear(y, adjoint=True)

    def nnz(self) -> int:
        return self._map.nnz()

    def build(self) -> sp.csr_array:
        m = self._map.to_matrix()
        return sp.csr_array(m.T.conj()) if self._adjoint else m


# ----------------------------------------------------------------------------- graph


class Node(NamedTuple):
    """One value of the graph: the input, a step of a parent, a sum or a gather.

    ``kind`` is ``"input"``, ``"step"`` (``step`` of ``parents[0]``), ``"sum"``
    (``Σ coeffs[i]·parents[i] + offset``) or ``"gather"`` (element ``j`` is element
    ``source[j]`` of the parents' flattened values laid end to end, or ``offset[j]``
    where ``source[j] < 0``).
    """

    kind: str
    shape: Shape
    parents: tuple[int, ...] = ()
    step: Step | None = None
    coeffs: tuple[float, ...] = ()
    source: Array | None = None
    offset: Array | None = None
    name: str = ""
    label: str = ""  # what the node stands for in the breakdown ("cat", "MaxPool2d", ...)


class MapLayer(NamedTuple):
    """One row of :attr:`AffineMap.layers`: a module or function of the model.

    ``input_shape`` is its (first) input's; ``inputs`` every input's, for ``cat`` and sums.
    """

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    nnz: int
    nbytes: int
    inputs: tuple[Shape, ...] = ()


def _fmt(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _inputs(row: MapLayer) -> str:
    """A row's input shapes for display: ``(8, 32, 32) + (8, 32, 32)`` for a ``cat``."""
    if len(row.inputs) > 1:
        return " + ".join(_fmt(s) for s in row.inputs)
    return _fmt(row.input_shape)


class AffineMap:
    """The exact affine map ``y = M x + b`` of one sample, flattened in C order.

    Made by :func:`convmat.from_torch`. ``M`` is never built unless asked for.

    Attributes
    ----------
    input_shape, output_shape : tuple of int
        One sample in and out, ``(C, *spatial)`` for image layers.
    matrix : scipy.sparse.csr_array, shape ``(∏output_shape, ∏input_shape)``
        ``M``, built on first use; refused with ``MemoryError`` naming its size when
        it would need more than ``max_bytes``.
    offset : numpy.ndarray, shape ``(∏output_shape,)``
        ``b = f(0)``: biases, constant pads, BatchNorm shifts, linearisation offsets.
    operator : scipy.sparse.linalg.LinearOperator
        ``M`` matrix-free, with its adjoint: for ``svds``, ``eigsh``, ``lsmr``.
    layers : list of MapLayer
        One row per module or function: name, type, shapes, stored entries, bytes.
    T : AffineMap
        The linear map ``Mᵀ`` (no offset): the adjoint of the linear part.
    layout : str
        How a sample is laid out: ``"channels_first"`` (``(C, *spatial)``, PyTorch's) or
        ``"channels_last"`` (``(*spatial, C)``, Keras' default); flattening is C order of
        that shape either way.
    """

    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        max_bytes: Any = DEFAULT_MAX_BYTES,
        name: str = "",
        layout: str = "channels_first",
    ) -> None:
        self._nodes = tuple(nodes)
        self.input_shape: Shape = self._nodes[0].shape
        self.output_shape: Shape = self._nodes[-1].shape
        self.max_bytes = max_bytes
        self.name = name
        self.layout = layout
        steps = [n.step for n in self._nodes if n.step is not None]
        dtypes = [s.dtype for s in steps] or [np.dtype(np.float64)]
        dtypes += [n.offset.dtype for n in self._nodes if n.offset is not None]
        self.dtype = np.result_type(*dtypes)
        self._matrix: sp.csr_array | None = None
        self._offset: Array | None = None

    # -- sizes
    @property
    def shape(self) -> tuple[int, int]:
        """``(∏output_shape, ∏input_shape)``, the shape of ``M``."""
        return (math.prod(self.output_shape), math.prod(self.input_shape))

    def nnz(self) -> int:
        """Stored entries of the steps' matrices (of ``M`` itself when it is one step)."""
        return sum(row.nnz for row in self.layers)

    # -- evaluation
    def _check(self, x: Any, name: str = "x") -> tuple[Array, bool]:
        a = numeric_array(x, name)
        shape = self.input_shape
        if a.shape == shape:
            return a[None], False
        if a.shape[1:] == shape:
            return a, True
        raise ValueError(
            f"{name} must have shape {_fmt(shape)} (one sample) or (N, {_fmt(shape)[1:]} "
            f"(a batch); got shape {a.shape}"
        )

    def _forward(self, x: Array, *, offsets: bool) -> Array:
        """The graph on a batch ``(K, *input_shape)``; ``offsets=False`` is the linear part."""
        values: list[Array | None] = [None] * len(self._nodes)
        values[0] = x
        last_use = self._last_use()
        for i, node in enumerate(self._nodes[1:], start=1):
            parents = [values[p] for p in node.parents]
            values[i] = self._evaluate(node, parents, len(x), offsets=offsets)
            for p in node.parents:
                if last_use[p] == i and p != 0:
                    values[p] = None
        out = values[-1]
        assert out is not None
        return out

    def _last_use(self) -> list[int]:
        last = [0] * len(self._nodes)
        for i, node in enumerate(self._nodes):
            for p in node.parents:
                last[p] = i
        return last

    def _evaluate(self, node: Node, parents: list[Any], k: int, *, offsets: bool) -> Array:
        dtype = self.dtype
        if node.kind == "step":
            assert node.step is not None
            y = node.step.apply(parents[0])
            if offsets and node.step.offset is not None:
                y = y + node.step.offset
            return np.asarray(y)
        if node.kind == "sum":
            y = sum(c * p for c, p in zip(node.coeffs, parents, strict=True))
            y = np.asarray(y, dtype=np.result_type(dtype, *(p.dtype for p in parents)))
            if offsets and node.offset is not None:
                y = y + node.offset
            return y
        assert node.kind == "gather" and node.source is not None
        stacked = np.concatenate([p.reshape(k, -1) for p in parents], axis=1)
        src = node.source.reshape(-1)
        y = np.take(stacked, np.maximum(src, 0), axis=1)
        holes = src < 0
        if holes.any():
            y[:, holes] = (
                node.offset.reshape(-1)[holes] if offsets and node.offset is not None else 0
            )
        return y.reshape(k, *node.shape)

    def _linear(self, x: Array, *, adjoint: bool) -> Array:
        """``M`` (or ``Mᴴ``) on a batch of shaped samples."""
        if not adjoint:
            return self._forward(x, offsets=False)
        return self._backward(x)

    def _backward(self, y: Array) -> Array:
        """``Mᴴ y`` by reverse accumulation through the graph, batch ``(K, *output_shape)``."""
        k = len(y)
        grads: list[Array | None] = [None] * len(self._nodes)
        grads[-1] = y

        def add(i: int, g: Array) -> None:
            cur = grads[i]
            grads[i] = g if cur is None else cur + g

        for i in range(len(self._nodes) - 1, 0, -1):
            g = grads[i]
            grads[i] = None
            if g is None:
                continue
            node = self._nodes[i]
            if node.kind == "step":
                assert node.step is not None
                add(node.parents[0], node.step.adjoint(g))
            elif node.kind == "sum":
                for c, p in zip(node.coeffs, node.parents, strict=True):
                    add(p, np.conj(c) * g)
            else:
                assert node.source is not None
                sizes = [math.prod(self._nodes[p].shape) for p in node.parents]
                src = node.source.reshape(-1)
                keep = src >= 0
                acc = np.zeros((k, sum(sizes)), np.result_type(g.dtype, self.dtype))
                flat = g.reshape(k, -1)
                if np.unique(src[keep]).size == int(keep.sum()):
                    acc[:, src[keep]] = flat[:, keep]
                else:
                    scatter = sp.csr_array(
                        (np.ones(int(keep.sum())), (src[keep], np.flatnonzero(keep))),
                        shape=(sum(sizes), src.size),
                    )
                    acc = _rows_times(scatter, flat).astype(acc.dtype)
                start = 0
                for p, n in zip(node.parents, sizes, strict=True):
                    add(p, acc[:, start : start + n].reshape(k, *self._nodes[p].shape))
                    start += n
        g0 = grads[0]
        if g0 is None:
            return np.zeros((k, *self.input_shape), self.dtype)
        return g0

    def __call__(self, x: Any) -> Array:
        """``M x + b`` for one sample ``input_shape`` or a batch ``(N, *input_shape)``.

        A ``torch.Tensor`` is read (detached, on the CPU); the result is NumPy.
        """
        batch, batched = self._check(x)
        y = self._forward(
            batch.astype(np.result_type(batch.dtype, self.dtype), copy=False), offsets=True
        )
        return y if batched else y[0]

    def __matmul__(self, other: Any) -> Any:
        """``A @ B`` composes (``B`` first); ``A @ x`` applies (a flat ``x`` gives a flat one)."""
        if isinstance(other, AffineMap):
            return compose(self, other)
        a = numeric_array(other, "x")
        if a.ndim == 1 and a.size == self.shape[1]:
            return self(a.reshape(self.input_shape)).reshape(-1)
        return self(a)

    # -- the three forms
    @property
    def offset(self) -> Array:
        """``b = f(0)``, flattened: everything the map adds that does not depend on ``x``."""
        if self._offset is None:
            zero = np.zeros((1, *self.input_shape), self.dtype)
            self._offset = self._forward(zero, offsets=True).reshape(-1)
        return self._offset

    @property
    def matrix(self) -> sp.csr_array:
        """``M`` as a ``csr_array`` (built once, refused beyond ``max_bytes``)."""
        if self._matrix is None:
            self._matrix = self.to_matrix()
        return self._matrix

    def to_matrix(self, *, max_bytes: Any = None) -> sp.csr_array:
        """``M``, refused with ``MemoryError`` when it would need more than ``max_bytes``.

        Each step's matrix is refused by arithmetic before it is built; products of
        steps are formed in row bands and refused as soon as their projected size
        passes the limit.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        mats: list[sp.csr_array | None] = [None] * len(self._nodes)  # None: the identity
        last_use = self._last_use()
        n_in = self.shape[1]
        for i, node in enumerate(self._nodes[1:], start=1):
            parents = [mats[p] for p in node.parents]
            if node.kind == "step":
                assert node.step is not None
                m = node.step.matrix(limit)
                mats[i] = m if parents[0] is None else product(m, parents[0], limit)
            elif node.kind == "sum":
                terms = [
                    (sp.eye_array(n_in, dtype=self.dtype, format="csr") if p is None else p) * c
                    for c, p in zip(node.coeffs, parents, strict=True)
                ]
                total = terms[0]
                for t in terms[1:]:
                    total = total + t
                mats[i] = sp.csr_array(total)
            else:
                mats[i] = _gather_matrix(node, parents, n_in, self.dtype)
            for p in node.parents:
                if last_use[p] == i and p != 0:
                    mats[p] = None
            m_i = mats[i]
            if m_i is not None:
                check_max_bytes(m_i.nnz, m_i.shape, m_i.dtype, limit, "map matrix", _ALTERNATIVE)
        out = mats[-1]
        if out is None:
            return sp.eye_array(n_in, dtype=self.dtype, format="csr")
        if len(self._nodes) == 2 and out.dtype == self.dtype:
            return out  # one step's own matrix: already canonical, nothing stored twice
        result = sp.csr_array(out, dtype=self.dtype)
        result.sum_duplicates()
        result.eliminate_zeros()
        return result

    @property
    def operator(self) -> AffineOperator:
        """``M`` as a matrix-free ``LinearOperator`` (``matvec``, ``rmatvec``, ``matmat``)."""
        return AffineOperator(self)

    @property
    def T(self) -> AffineMap:
        """The linear map ``Mᵀ`` (``Mᴴ`` when complex), from outputs to inputs; no offset."""
        step = MapStep(self, adjoint=True)
        return AffineMap(
            [Node("input", self.output_shape), Node("step", self.input_shape, (0,), step)],
            max_bytes=self.max_bytes,
            name=f"{self.name or 'map'}.T",
        )

    # -- analyses
    def layer(self, name: str) -> AffineMap:
        """The map of one module or function of the model, by its name in :attr:`layers`."""
        for node in self._nodes[1:]:
            if node.name == name and node.step is not None:
                step = node.step
                return AffineMap(
                    [
                        Node("input", step.input_shape),
                        Node("step", node.shape, (0,), step, name=name),
                    ],
                    max_bytes=self.max_bytes,
                    name=name,
                )
        names = [n.name for n in self._nodes[1:] if n.step is not None]
        raise ValueError(f"name must be one of the map's steps {names}; got {name!r}")

    def singular_values(self, k: int = 1, *, tol: float = 0.0) -> Array:
        """The ``k`` largest singular values of ``M``, largest first (``[0]``: the spectral norm).

        Computed matrix-free by ARPACK (``scipy.sparse.linalg.svds`` on :attr:`operator`,
        to ``tol``; 0 means machine precision), or densely when ``M`` is small.
        """
        from scipy.sparse.linalg import svds

        count = as_int(k, "k")
        rows, cols = self.shape
        if not 1 <= count <= min(rows, cols):
            raise ValueError(
                f"k must be between 1 and min(M.shape) = {min(rows, cols)}; got {count}"
            )
        if count >= min(rows, cols) - 1 or rows * cols <= 1 << 16:
            dense = self.to_matrix().toarray()
            return np.asarray(np.linalg.svd(dense, compute_uv=False)[:count])
        values = svds(
            self.operator, k=count, tol=tol, return_singular_vectors=False, random_state=0
        )
        return np.asarray(np.sort(values)[::-1])

    def overlap(self) -> Array:
        """The checkerboard of the map's structure: :func:`convmat.stack_overlap` of its layers.

        The convolutions, transposed convolutions and resizes of the map, in order,
        with every weight set to 1 and a ones input: how many paths reach each output
        position. Other steps (BatchNorm, activations) do not move positions.
        """
        from convmat._checkerboard import stack_overlap

        spatial = [n for n in self._nodes[1:] if n.step is not None and n.step.spec is not None]
        if not spatial:
            raise ValueError(
                "map must hold a convolution, a transposed convolution or a resize to count "
                f"overlaps; got steps {[r.kind for r in self.layers]}"
            )
        previous = spatial[0].step
        assert previous is not None
        for node in spatial[1:]:
            assert node.step is not None
            if node.step.input_shape[1:] != previous.output_shape[1:]:
                raise ValueError(
                    f"map's spatial layers must follow one another; {node.name} takes "
                    f"{node.step.input_shape[1:]} but the layer before it gives "
                    f"{previous.output_shape[1:]}"
                )
            previous = node.step
        first = spatial[0].step
        assert first is not None
        specs = [n.step.spec for n in spatial if n.step is not None and n.step.spec is not None]
        return stack_overlap(first.input_shape[1:], specs)

    # -- the breakdown
    @property
    def layers(self) -> list[MapLayer]:
        """The per-module breakdown: one :class:`MapLayer` per step, sum and gather."""
        rows = []
        for node in self._nodes[1:]:
            in_shape = self._nodes[node.parents[0]].shape if node.parents else node.shape
            if node.kind == "step":
                assert node.step is not None
                nnz, kind = node.step.nnz(), node.step.kind
                dtype = node.step.dtype
            else:
                n = math.prod(node.shape)
                nnz = n * len(node.parents) if node.kind == "sum" else n
                kind, dtype = node.label or node.kind, self.dtype
            shape = (math.prod(node.shape), math.prod(in_shape))
            inputs = tuple(self._nodes[p].shape for p in node.parents)
            rows.append(
                MapLayer(
                    node.name, kind, in_shape, node.shape, nnz, csr_bytes(nnz, shape, dtype), inputs
                )
            )
        return rows

    def __repr__(self) -> str:
        head = (
            f"AffineMap {self.name or ''} {_fmt(self.input_shape)} -> {_fmt(self.output_shape)}"
            f", M {self.shape[0]}x{self.shape[1]}, dtype={self.dtype}"
        ).replace("  ", " ")
        rows = [
            (
                r.name,
                r.kind,
                f"{_inputs(r)} -> {_fmt(r.output_shape)}",
                f"{r.nnz:,}",
                human_bytes(r.nbytes),
            )
            for r in self.layers
        ]
        titles = ("name", "type", "shape", "stored", "bytes")
        widths = [
            max(len(t), *(len(r[i]) for r in rows)) if rows else len(t)
            for i, t in enumerate(titles)
        ]
        lines = [head, "  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True))]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = (
            f"<p><b>AffineMap</b> {esc(self.name)} {_fmt(self.input_shape)} &rarr; "
            f"{_fmt(self.output_shape)}: <i>M</i> {self.shape[0]}&times;{self.shape[1]}, "
            f"dtype {self.dtype}</p>"
        )
        cells = "".join(
            f"<tr><td style='text-align:left'><code>{esc(r.name)}</code></td>"
            f"<td style='text-align:left'>{esc(r.kind)}</td>"
            f"<td style='text-align:left'>{_inputs(r)} &rarr; {_fmt(r.output_shape)}</td>"
            f"<td style='text-align:right'>{r.nnz:,}</td>"
            f"<td style='text-align:right'>{human_bytes(r.nbytes)}</td></tr>"
            for r in self.layers
        )
        return (
            f"{head}<table><thead><tr><th style='text-align:left'>name</th>"
            f"<th style='text-align:left'>type</th><th style='text-align:left'>shape</th>"
            f"<th>stored</th><th>bytes</th></tr></thead><tbody>{cells}</tbody></table>"
        )


class AffineOperator(TensorInput, LinearOperator):  # type: ignore[misc]
    """The linear part ``M`` of an :class:`AffineMap`, matrix-free, with its adjoint."""

    def __init__(self, amap: AffineMap) -> None:
        self.map = amap
        super().__init__(dtype=amap.dtype, shape=amap.shape)

    def _matmat(self, x: Array) -> Array:
        m = self.map
        batch = np.asarray(x).T.reshape(-1, *m.input_shape)
        result: Array = m._linear(batch, adjoint=False).reshape(batch.shape[0], -1).T
        return result

    def _matvec(self, x: Array) -> Array:
        return self._matmat(np.asarray(x).reshape(-1, 1)).reshape(-1)

    def _rmatmat(self, y: Array) -> Array:
        m = self.map
        batch = np.asarray(y).T.reshape(-1, *m.output_shape)
        result: Array = m._linear(batch, adjoint=True).reshape(batch.shape[0], -1).T
        return result

    def _rmatvec(self, y: Array) -> Array:
        return self._rmatmat(np.asarray(y).reshape(-1, 1)).reshape(-1)


def _gather_matrix(
    node: Node, parents: list[sp.csr_array | None], n_in: int, dtype: Any
) -> sp.csr_array:
    assert node.source is not None
    src = node.source.reshape(-1)
    blocks = [sp.eye_array(n_in, dtype=dtype, format="csr") if p is None else p for p in parents]
    stacked = blocks[0] if len(blocks) == 1 else sp.csr_array(sp.vstack(blocks, format="csr"))
    keep = src >= 0
    rows = np.flatnonzero(keep)
    select = sp.csr_array(
        (np.ones(rows.size, dtype), src[keep], np.concatenate([[0], np.cumsum(keep)])),
        shape=(src.size, stacked.shape[0]),
    )
    return sp.csr_array(select @ stacked)


def product(a: sp.csr_array, b: sp.csr_array, max_bytes: Any) -> sp.csr_array:
    """``a @ b`` in row bands, refused once its projected size passes ``max_bytes``."""
    rows = a.shape[0]
    band = rows if rows <= 4096 else max(1, rows // 16)
    parts = []
    nnz = 0
    for start in range(0, rows, band):
        part = sp.csr_array(a[start : start + band] @ b)
        parts.append(part)
        nnz += part.nnz
        done = start + part.shape[0]
        projected = nnz * rows // done
        check_max_bytes(
            projected,
            (rows, b.shape[1]),
            part.dtype,
            max_bytes,
            "map matrix (projected from its first rows)",
            _ALTERNATIVE,
        )
    return parts[0] if len(parts) == 1 else sp.csr_array(sp.vstack(parts, format="csr"))


def compose(outer: AffineMap, inner: AffineMap) -> AffineMap:
    """``outer ∘ inner``: ``inner`` first. Shapes must agree (equal sizes are reshaped)."""
    if math.prod(inner.output_shape) != math.prod(outer.input_shape):
        raise ValueError(
            f"maps must chain: the right map's output {_fmt(inner.output_shape)} must have the "
            f"size of the left map's input {_fmt(outer.input_shape)}"
        )
    nodes = [
        Node("input", inner.input_shape),
        Node("step", inner.output_shape, (0,), MapStep(inner), name=inner.name or "right"),
    ]
    if inner.output_shape != outer.input_shape:
        n = math.prod(outer.input_shape)
        nodes.append(Node("gather", outer.input_shape, (1,), source=np.arange(n), name="reshape"))
    nodes.append(
        Node(
            "step", outer.output_shape, (len(nodes) - 1,), MapStep(outer), name=outer.name or "left"
        )
    )
    return AffineMap(
        nodes,
        max_bytes=min(outer.max_bytes, inner.max_bytes),
        name=f"{outer.name or 'left'} @ {inner.name or 'right'}",
    )
