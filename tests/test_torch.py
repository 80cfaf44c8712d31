"""from_torch and AffineMap: every supported module against PyTorch, real architectures, errors.

Each case checks four routes against ``module(x)``: ``map(x)``, ``map.matrix @ x + offset``,
``map.operator`` and, for small sizes, the matrix against ``torch.autograd``'s Jacobian;
the operator passes the dot test. Modules run in float64 so agreement is to rounding.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from convmat import AffineMap, conv_matrix, conv_transpose_matrix, from_torch  # noqa: E402
from convmat.testing import dot_test  # noqa: E402

RTOL, ATOL = 1e-9, 1e-9

# torch's own note on padding="same" with an even kernel is not ours to fail on
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _out(module: Any, x: Any, **call: Any) -> np.ndarray[Any, Any]:
    with torch.no_grad():
        y = module(x, **call)
    return np.asarray(y.detach().numpy())


def check_map(
    module: Any,
    shape: tuple[int, ...],
    *,
    at: bool = False,
    jacobian: bool = True,
    seed: int = 0,
    call: dict[str, Any] | None = None,
    **kwargs: Any,
) -> AffineMap:
    """Every route of the map equals the module (at ``at`` when linearised)."""
    torch.manual_seed(seed)
    module = module.double().eval()
    x0 = torch.randn(*shape, dtype=torch.float64)
    amap = from_torch(module, shape, at=x0 if at else None, **kwargs)
    call = call or {}
    batch = x0[None] if at else torch.randn(3, *shape, dtype=torch.float64)
    want = _out(module, batch, **call)
    assert amap.input_shape == shape and amap.output_shape == want.shape[1:]
    assert_allclose(amap(batch), want, rtol=RTOL, atol=ATOL)
    assert_allclose(amap(batch[0]), want[0], rtol=RTOL, atol=ATOL)
    flat = batch.numpy().reshape(len(batch), -1)
    m = amap.matrix
    assert isinstance(m, sp.csr_array) and m.shape == amap.shape
    assert_allclose(
        (m @ flat.T).T + amap.offset, want.reshape(len(batch), -1), rtol=RTOL, atol=ATOL
    )
    assert_allclose(
        amap.operator.matmat(flat.T).T + amap.offset,
        want.reshape(len(batch), -1),
        rtol=RTOL,
        atol=ATOL,
    )
    assert_allclose(amap.operator.matvec(flat[0]), m @ flat[0], rtol=RTOL, atol=ATOL)
    y = np.random.default_rng(seed).standard_normal(m.shape[0])
    assert_allclose(amap.operator.rmatvec(y), m.T @ y, rtol=RTOL, atol=ATOL)
    dot_test(amap.operator)
    if jacobian and m.shape[0] * m.shape[1] <= 200_000:

        def f(v: Any) -> Any:
            return module(v[None].clone(), **call)[0]

        jac = torch.autograd.functional.jacobian(f, x0).reshape(m.shape).numpy()
        assert_allclose(m.toarray(), jac, rtol=1e-8, atol=1e-10)
    return amap


# ------------------------------------------------------------------ linear modules, one by one

LINEAR: list[tuple[str, Callable[[], Any], tuple[int, ...]]] = [
    ("conv1d", lambda: nn.Conv1d(2, 3, 3, stride=2, padding=1, dilation=1), (2, 9)),
    ("conv2d_groups", lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2), (4, 7, 6)),
    ("conv2d_same", lambda: nn.Conv2d(2, 3, (2, 3), padding="same", bias=False), (2, 6, 5)),
    ("conv2d_valid", lambda: nn.Conv2d(2, 3, 3, padding="valid", stride=(2, 1)), (2, 7, 6)),
    ("conv2d_reflect", lambda: nn.Conv2d(2, 2, 3, padding=2, padding_mode="reflect"), (2, 5, 6)),
    (
        "conv2d_replicate",
        lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="replicate"),
        (1, 5, 4),
    ),
    (
        "conv2d_circular",
        lambda: nn.Conv2d(2, 2, 3, stride=2, padding=(1, 2), padding_mode="circular"),
        (2, 6, 5),
    ),
    ("conv3d", lambda: nn.Conv3d(2, 2, 2, stride=(1, 2, 1), padding=1), (2, 3, 4, 3)),
    ("conv_transpose1d", lambda: nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1), (2, 5)),
    (
        "conv_transpose2d",
        lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
        (4, 4, 3),
    ),
    (
        "conv_transpose2d_dilated",
        lambda: nn.ConvTranspose2d(2, 2, 3, stride=1, padding=3, dilation=2),
        (2, 5, 6),
    ),
    ("conv_transpose3d", lambda: nn.ConvTranspose3d(2, 1, 2, stride=2), (2, 2, 3, 2)),
    ("linear", lambda: nn.Linear(12, 5), (12,)),
    ("linear_leading", lambda: nn.Linear(4, 3), (2, 3, 4)),
    ("identity", lambda: nn.Identity(), (2, 3)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 6)), (12, 3)),
    ("dropout", lambda: nn.Dropout(0.5), (2, 5)),
    ("dropout2d", lambda: nn.Dropout2d(0.3), (2, 3, 3)),
    ("batchnorm1d", lambda: _bn(nn.BatchNorm1d(3)), (3, 5)),
    ("batchnorm2d", lambda: _bn(nn.BatchNorm2d(3)), (3, 4, 4)),
    ("batchnorm3d_noaffine", lambda: _bn(nn.BatchNorm3d(2, affine=False)), (2, 2, 3, 2)),
    ("upsample_nearest", lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
    ("upsample_bilinear", lambda: nn.Upsample(size=(7, 5), mode="bilinear"), (2, 3, 4)),
    (
        "upsample_bicubic_ac",
        lambda: nn.Upsample(scale_factor=1.5, mode="bicubic", align_corners=True),
        (1, 4, 4),
    ),
    (
        "upsample_trilinear",
        lambda: nn.Upsample(scale_factor=(2, 1, 1.5), mode="trilinear"),
        (1, 2, 3, 2),
    ),
    (
        "upsample_recompute",
        lambda: nn.Upsample(scale_factor=1.7, mode="linear", recompute_scale_factor=True),
        (2, 5),
    ),
    ("upsample_area", lambda: nn.Upsample(size=(3, 2), mode="area"), (2, 7, 5)),
    ("upsample_area_up", lambda: nn.Upsample(scale_factor=1.5, mode="area"), (1, 4, 3)),
    ("upsampling_nearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=3), (1, 2, 3)),
    ("upsampling_bilinear2d", lambda: nn.UpsamplingBilinear2d(size=(5, 6)), (2, 3, 3)),
    ("pixel_shuffle", lambda: nn.PixelShuffle(2), (8, 3, 2)),
    ("pixel_unshuffle", lambda: nn.PixelUnshuffle(2), (2, 4, 6)),
    ("zeropad1d", lambda: nn.ZeroPad1d((2, 1)), (2, 4)),
    ("zeropad2d_crop", lambda: nn.ZeroPad2d((1, -1, 2, 0)), (2, 4, 4)),
    ("zeropad3d", lambda: nn.ZeroPad3d(1), (1, 2, 2, 2)),
    ("constantpad2d", lambda: nn.ConstantPad2d((1, 2, 0, 1), 3.5), (2, 3, 3)),
    ("constantpad3d", lambda: nn.ConstantPad3d((0, 1, 1, 0, 2, 1), -1.0), (1, 2, 2, 2)),
    ("reflectionpad1d", lambda: nn.ReflectionPad1d(2), (2, 4)),
    ("reflectionpad2d", lambda: nn.ReflectionPad2d((1, 2, 2, 0)), (2, 3, 4)),
    ("reflectionpad3d", lambda: nn.ReflectionPad3d(1), (1, 2, 3, 2)),
    ("replicationpad1d", lambda: nn.ReplicationPad1d((3, 0)), (2, 3)),
    ("replicationpad2d", lambda: nn.ReplicationPad2d(2), (1, 3, 2)),
    ("replicationpad3d", lambda: nn.ReplicationPad3d((1, 0, 0, 1, 1, 1)), (1, 2, 2, 2)),
    ("circularpad1d", lambda: nn.CircularPad1d(2), (2, 3)),
    ("circularpad2d", lambda: nn.CircularPad2d((1, 0, 2, 1)), (1, 3, 3)),
    ("circularpad3d", lambda: nn.CircularPad3d(1), (1, 2, 2, 3)),
    (
        "instancenorm_tracked",
        lambda: _bn(nn.InstanceNorm2d(2, affine=True, track_running_stats=True)),
        (2, 3, 3),
    ),
]


def _bn(module: Any) -> Any:
    """A normalisation with non-trivial running statistics and affine parameters."""
    torch.manual_seed(1)
    module.running_mean.uniform_(-1, 1)
    module.running_var.uniform_(0.5, 2)
    if module.weight is not None:
        with torch.no_grad():
            module.weight.uniform_(0.5, 1.5)
            module.bias.uniform_(-1, 1)
    return module


@pytest.mark.parametrize(("factory", "shape"), [c[1:] for c in LINEAR], ids=[c[0] for c in LINEAR])
def test_linear_module(factory: Callable[[], Any], shape: tuple[int, ...]) -> None:
    check_map(factory(), shape)


def test_conv_transpose_output_size() -> None:
    """``output_size=`` as ``ConvTranspose2d.forward`` takes it: the map's size follows it."""
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    a = check_map(m, (2, 4, 5), output_size=(8, 9), call={"output_size": (8, 9)})
    assert a.output_shape == (3, 8, 9)
    b = check_map(
        m, (2, 4, 5), output_size={"ConvTranspose2d": [1, 3, 7, 10]}, call={"output_size": [7, 10]}
    )
    assert b.output_shape == (3, 7, 10)
    with pytest.raises(ValueError, match="target must be reachable"):
        from_torch(m, (2, 4, 5), output_size=(12, 9))


@pytest.mark.parametrize("seed", range(6))
def test_random_convolutions(seed: int) -> None:
    """Seeded draws over every Conv / ConvTranspose argument, 1-3 spatial dims."""
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 3))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, ndim))
    s = tuple(int(v) for v in rng.integers(1, 3, ndim))
    d = tuple(int(v) for v in rng.integers(1, 3, ndim))
    spatial = tuple(
        di * (ki - 1) + 2 + int(rng.integers(0, 3)) for ki, di in zip(k, d, strict=True)
    )
    cls = [nn.Conv1d, nn.Conv2d, nn.Conv3d][ndim - 1]
    mode = ["zeros", "reflect", "replicate", "circular"][seed % 4]
    pad = tuple(min(int(rng.integers(0, 3)), n - 1) for n in spatial)
    conv = cls(
        c_in,
        c_out,
        k,
        stride=s,
        padding=pad,
        dilation=d,
        groups=groups,
        padding_mode=mode,
        bias=bool(seed % 2),
    )
    check_map(conv, (c_in, *spatial))
    tcls = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][ndim - 1]
    op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d, strict=True))
    tconv = tcls(
        c_in,
        c_out,
        k,
        stride=s,
        padding=pad,
        output_padding=op,
        dilation=d,
        groups=groups,
        bias=not seed % 2,
    )
    check_map(tconv, (c_in, *spatial))


def test_matrix_equals_conv_matrix() -> None:
    """A layer's map is conv_matrix / conv_transpose_matrix with its bias as the offset."""
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    a = from_torch(conv, (3, 8, 8))
    c = conv_matrix((3, 8, 8), conv.weight, stride=2, padding=1)
    assert a.matrix.dtype == np.float32
    assert (a.matrix != c).nnz == 0
    assert_allclose(
        a.offset.reshape(4, -1), np.repeat(conv.bias.detach().numpy()[:, None], 16, axis=1)
    )
    t = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
    b = from_torch(t, (4, 5, 5))
    assert (b.matrix != conv_transpose_matrix((4, 5, 5), t.weight, stride=2, padding=1)).nnz == 0
    assert not b.offset.any()


# ------------------------------------------------------------------ pooling (needs the ops)


POOLS = [
    ("avgpool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 8)),
    (
        "avgpool2d",
        lambda: nn.AvgPool2d((2, 3), stride=(2, 1), padding=1, count_include_pad=False),
        (2, 5, 6),
    ),
    ("avgpool2d_divisor", lambda: nn.AvgPool2d(2, divisor_override=3), (1, 4, 4)),
    ("avgpool3d", lambda: nn.AvgPool3d(2, stride=1, ceil_mode=True), (1, 3, 3, 2)),
    ("adaptiveavgpool1d", lambda: nn.AdaptiveAvgPool1d(3), (2, 7)),
    ("adaptiveavgpool2d", lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 5, 4)),
    ("adaptiveavgpool3d", lambda: nn.AdaptiveAvgPool3d(2), (1, 3, 4, 5)),
]


@pytest.mark.parametrize(("factory", "shape"), [c[1:] for c in POOLS], ids=[c[0] for c in POOLS])
def test_average_pooling(factory: Callable[[], Any], shape: tuple[int, ...]) -> None:
    pytest.importorskip("convmat._avgpool")
    check_map(factory(), shape)


# ------------------------------------------------------------------ nonlinear, at=


NONLINEAR = [
    ("relu", lambda: nn.ReLU(), (2, 3, 3)),
    ("relu_inplace", lambda: nn.ReLU(inplace=True), (2, 4)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (2, 4)),
    ("prelu", lambda: nn.PReLU(2, init=0.3), (2, 3, 3)),
    ("relu6", lambda: nn.ReLU6(), (3, 4)),
    ("hardtanh", lambda: nn.Hardtanh(-0.5, 0.7), (3, 4)),
    ("elu", lambda: nn.ELU(0.7), (3, 4)),
    ("gelu", lambda: nn.GELU(), (3, 4)),
    ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), (3, 4)),
    ("silu", lambda: nn.SiLU(), (3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 4)),
    ("tanh", lambda: nn.Tanh(), (3, 4)),
    ("softplus", lambda: nn.Softplus(beta=2, threshold=1), (3, 4)),
    ("maxpool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 9)),
    ("maxpool2d", lambda: nn.MaxPool2d(2), (2, 4, 6)),
    ("maxpool2d_overlap", lambda: nn.MaxPool2d(3, stride=1, dilation=2, ceil_mode=True), (1, 7, 6)),
    ("maxpool3d", lambda: nn.MaxPool3d(2, stride=(1, 2, 2)), (1, 3, 4, 4)),
    ("adaptivemaxpool2d", lambda: nn.AdaptiveMaxPool2d((2, 3)), (2, 5, 7)),
    ("groupnorm", lambda: nn.GroupNorm(2, 4), (4, 3, 3)),
    ("instancenorm2d", lambda: nn.InstanceNorm2d(3, affine=True), (3, 3, 4)),
    ("instancenorm1d", lambda: nn.InstanceNorm1d(2), (2, 6)),
    ("layernorm", lambda: nn.LayerNorm((3, 4)), (2, 3, 4)),
    ("layernorm_last", lambda: nn.LayerNorm(5, bias=False), (3, 5)),
]


@pytest.mark.parametrize(
    ("factory", "shape"), [c[1:] for c in NONLINEAR], ids=[c[0] for c in NONLINEAR]
)
def test_nonlinear_module_at(factory: Callable[[], Any], shape: tuple[int, ...]) -> None:
    module = factory()
    if (
        isinstance(module, (nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm))
        and module.weight is not None
    ):
        with torch.no_grad():
            module.weight.uniform_(0.5, 1.5)
            if module.bias is not None:
                module.bias.uniform_(-1, 1)
    check_map(module, shape, at=True)
    with pytest.raises(ValueError, match=r"is not linear; pass at="):
        from_torch(module, shape)


def test_piecewise_linear_map_is_exact_on_its_region() -> None:
    """For ReLU/max-pool networks the map at x equals the model near x, not only at x."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 2, 3),
        nn.LeakyReLU(0.1),
    ).double()
    x = torch.randn(1, 8, 8, dtype=torch.float64)
    a = from_torch(net, (1, 8, 8), at=x)
    near = x + 1e-9 * torch.randn_like(x)
    assert_allclose(a(near), _out(net, near[None])[0], rtol=1e-12, atol=1e-12)


def test_saliency_row_is_the_input_gradient() -> None:
    torch.manual_seed(4)
    net = (
        nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1),
            nn.GELU(),
            nn.AvgPool2d(2) if _has_avgpool() else nn.Identity(),
            nn.Conv2d(3, 1, 3),
        )
        .double()
        .eval()
    )
    x = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    a = from_torch(net, (1, 8, 8), at=x)
    out = net(x[None])[0]
    flat = out.reshape(-1)
    (grad,) = torch.autograd.grad(flat[2], x)
    assert_allclose(
        a.matrix[[2], :].toarray().reshape(1, 8, 8), grad.numpy(), rtol=1e-10, atol=1e-12
    )


def _has_avgpool() -> bool:
    try:
        import convmat._avgpool  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------ graphs through torch.fx


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: Any) -> Any:
        y = self.conv2(self.conv1(x))
        return 0.5 * (x + y) - y / 4 + 1.0 - (-x)


class Rearrange(nn.Module):
    """cat, slicing, view with the batch size, permute, transpose, F.pad, chunk, stack."""

    def forward(self, x: Any) -> Any:
        a, b = torch.chunk(x, 2, dim=1)
        y = torch.cat([b, a, x[:, :1]], dim=1)[:, :, 1:, ::2]
        y = F.pad(y, (1, 0, 0, 2), value=2.0)
        y = y.permute(0, 2, 3, 1).transpose(1, 2).contiguous()
        z = torch.stack([y, y * 3], dim=1)
        return z.view(z.size(0), -1)


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: Any) -> Any:
        y = F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)
        y = F.pad(y, (1, 1, 1, 1), mode="reflect")
        return torch.flatten(F.pixel_unshuffle(y[:, :, :8, :8], 2), 1)


class Antialiased(nn.Module):
    def forward(self, x: Any) -> Any:
        a = F.interpolate(x, size=(3, 4), mode="bilinear", antialias=True)
        b = F.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=True)
        return torch.cat([a.flatten(1), b.flatten(1)], dim=1)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 2, 1)
        self.b = nn.Conv2d(2, 2, 1)

    def forward(self, x: Any) -> Any:
        return torch.sigmoid(self.a(x)) * self.b(x) + F.relu(x) / (1.5 + torch.tanh(x))


@pytest.mark.parametrize(
    "model,shape",
    [
        (Residual, (3, 5, 5)),
        (Rearrange, (4, 3, 4)),
        (Functional, (2, 4, 4)),
        (Antialiased, (2, 7, 8)),
    ],
    ids=["residual", "rearrange", "functional", "antialiased"],
)
def test_linear_graphs(model: Callable[[], Any], shape: tuple[int, ...]) -> None:
    check_map(model(), shape)


def test_gated_graph_at() -> None:
    check_map(Gated(), (2, 3, 3), at=True)
    with pytest.raises(ValueError, match="pass at="):
        from_torch(Gated(), (2, 3, 3))


# ------------------------------------------------------------------ real architectures


def dcgan_generator(nz: int = 8, ngf: int = 4, nc: int = 1) -> Any:
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


class UNet(nn.Module):
    def __init__(self, c: int = 2) -> None:
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU())
        self.down2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.out = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, 1, 1))

    def forward(self, x: Any) -> Any:
        a = self.down1(x)
        b = self.down2(a)
        return self.out(torch.cat([a, self.up(b)], dim=1))


class LinearUNet(UNet):
    """The U-Net's wiring with average pooling and no activations: linear everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.down1 = nn.Conv2d(1, 2, 3, padding=1)
        self.down2 = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear"), nn.Conv2d(2, 4, 3, padding=1)
        )
        self.out = nn.Sequential(nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(2, 1, 1))


def espcn(r: int = 2) -> Any:
    return nn.Sequential(
        nn.Conv2d(1, 4, 5, padding=2),
        nn.Tanh(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, r * r, 3, padding=1),
        nn.PixelShuffle(r),
    )


def fcn_head() -> Any:
    """An FCN-style head: 1×1 scores, then a ConvTranspose2d initialised to bilinear ×4."""
    up = nn.ConvTranspose2d(3, 3, 8, stride=4, padding=2, groups=3, bias=False)
    f = np.array([1, 3, 5, 7, 7, 5, 3, 1]) / 8
    with torch.no_grad():
        up.weight.copy_(torch.as_tensor(np.outer(f, f)).expand(3, 1, 8, 8))
    return nn.Sequential(nn.Conv2d(4, 3, 1), up)


class BasicBlock(nn.Module):
    def __init__(self, c: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = _bn(nn.BatchNorm2d(c))
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = _bn(nn.BatchNorm2d(c))

    def forward(self, x: Any) -> Any:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def test_dcgan_generator() -> None:
    g = dcgan_generator()
    a = check_map(g, (8, 1, 1), at=True, jacobian=True)
    assert a.output_shape == (1, 32, 32)
    assert [r.kind for r in a.layers][:3] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"]
    with pytest.raises(ValueError, match=r"^2 \(ReLU\) is not linear; pass at="):
        from_torch(g, (8, 1, 1))
    linear = nn.Sequential(*[m for m in g if isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d))])
    check_map(linear, (8, 1, 1))


def test_unet_with_cat_skips() -> None:
    check_map(UNet(), (1, 8, 8), at=True)
    check_map(LinearUNet(), (1, 8, 8))


def test_espcn_and_fcn_head() -> None:
    check_map(espcn(), (1, 5, 5), at=True)
    head = check_map(fcn_head(), (4, 3, 3))
    assert head.output_shape == (3, 12, 12)


def test_resnet_basic_block() -> None:
    check_map(BasicBlock(), (3, 5, 5), at=True)
    with pytest.raises(ValueError, match=r"relu \(ReLU\) is not linear"):
        from_torch(BasicBlock().eval(), (3, 5, 5))


def test_float32_model_matches_torch_to_rounding() -> None:
    torch.manual_seed(0)
    g = dcgan_generator().eval()
    z = torch.randn(8, 1, 1)
    a = from_torch(g, (8, 1, 1), at=z)
    assert a.dtype == np.float32 and a.matrix.dtype == np.float32
    assert_allclose(a(z), g(z[None])[0].detach().numpy(), atol=2e-6)


# ------------------------------------------------------------------ the map object


def test_composition_transpose_and_matmul() -> None:
    torch.manual_seed(5)
    enc = nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    dec = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1).double()
    a, b = from_torch(enc, (2, 6, 6)), from_torch(dec, (3, 3, 3))
    ab = b @ a
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    assert_allclose(ab(x), _out(dec, enc(x).detach()), rtol=RTOL, atol=ATOL)
    assert_allclose(ab.matrix.toarray(), (b.matrix @ a.matrix).toarray(), atol=1e-12)
    assert_allclose(ab.offset, b.matrix @ a.offset + b.offset, atol=1e-12)
    flat = x[0].numpy().ravel()
    assert_allclose(a @ flat, a.matrix @ flat + a.offset, atol=1e-12)
    assert_allclose(a @ x[0], a(x[0]), atol=1e-12)
    t = a.T
    assert t.input_shape == a.output_shape and t.output_shape == a.input_shape
    assert (abs(t.matrix - a.matrix.T) > 1e-12).nnz == 0
    assert not t.offset.any()
    dot_test(t.operator)
    with pytest.raises(ValueError, match="maps must chain"):
        a @ a


def test_layers_breakdown_and_display() -> None:
    a = from_torch(BasicBlock().double().eval(), (3, 5, 5), at=torch.randn(3, 5, 5))
    rows = a.layers
    assert [r.name for r in rows][:3] == ["conv1", "bn1", "relu"]
    assert (
        rows[0].nnz
        == a.layers[0].nnz
        == conv_matrix((3, 5, 5), np.ones((3, 3, 3, 3)), padding=1).nnz
    )
    assert rows[0].input_shape == (3, 5, 5) and rows[0].nbytes > 0
    text = repr(a)
    assert "conv1" in text and "Conv2d" in text and "(3, 5, 5) -> (3, 5, 5)" in text
    page = a._repr_html_()
    assert page.count("<tr>") == len(rows) + 1 and "bn1" in page


def test_matrix_refused_before_building() -> None:
    big = nn.Conv2d(64, 64, 3, padding=1)
    a = from_torch(big, (64, 224, 224), max_bytes=2**20)
    with pytest.raises(MemoryError, match=r"GiB.*max_bytes.*\.operator"):
        _ = a.matrix
    # the matrix-free operator still works on a layer whose matrix is 3 GiB
    y = a.operator.matvec(np.ones(a.shape[1], np.float32))
    assert y.shape == (a.shape[0],)


def test_stacked_matrix_refused_by_its_projected_size() -> None:
    g = nn.Sequential(
        nn.Conv2d(8, 8, 5, padding=2), nn.Conv2d(8, 8, 5, padding=2), nn.Conv2d(8, 8, 5, padding=2)
    )
    a = from_torch(g, (8, 48, 48), max_bytes=40 * 2**20)
    with pytest.raises(MemoryError, match="map matrix"):
        a.to_matrix()


# ------------------------------------------------------------------ refusals


def test_errors_name_the_module() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1))
    with pytest.raises(
        TypeError,
        match=r"1 \(torch.nn.modules.activation.Softmax\) is not "
        r"supported.*Conv2d",
    ):
        from_torch(net, (1, 5, 5))
    with pytest.raises(
        ValueError,
        match=r"^input_shape channels must equal weight.shape\[1\] \* groups = 1; got 3$",
    ):
        from_torch(net, (3, 5, 5))
    deep = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(3, 1, 1))
    with pytest.raises(ValueError, match=r"^1 input channels must equal weight.shape\[1\]"):
        from_torch(deep, (1, 5, 5))
    with pytest.raises(ValueError, match="input_shape must be >= 1 on every axis"):
        from_torch(nn.Conv2d(1, 1, 1), (1, 0, 4))
    with pytest.raises(ValueError, match="kernel"):
        from_torch(nn.Conv2d(1, 1, 5), (1, 3, 3))
    with pytest.raises(TypeError, match=r"module must be a torch\.nn\.Module"):
        from_torch(lambda x: x, (1, 3))
    with pytest.raises(ValueError, match=r"at must be one sample of input_shape"):
        from_torch(nn.ReLU(), (2, 3), at=np.zeros((1, 2, 3)))


def test_training_mode_refused() -> None:
    with pytest.raises(ValueError, match=r"BatchNorm2d\) must be in eval mode.*\.eval\(\)"):
        from_torch(nn.BatchNorm2d(2), (2, 3, 3))
    drop = nn.Sequential(nn.Dropout(0.5))
    with pytest.raises(ValueError, match=r"0 \(Dropout\) must be in eval mode"):
        from_torch(drop, (4,))


class Branching(nn.Module):
    def forward(self, x: Any) -> Any:
        if x.sum() > 0:
            return x
        return -x


class BatchMixing(nn.Module):
    def forward(self, x: Any) -> Any:
        return x.reshape(-1)


def test_untraceable_and_batch_mixing_models() -> None:
    with pytest.raises(TypeError, match=r"cannot be traced by torch\.fx"):
        from_torch(Branching(), (2,))
    with pytest.raises(ValueError, match="must keep the batch axis first"):
        from_torch(BatchMixing(), (2, 3))


def test_tensors_everywhere() -> None:
    """Public functions take tensors that require grad, of any float dtype."""
    import convmat

    conv = nn.Conv2d(3, 4, 3)
    m = conv_matrix((3, 8, 8), conv.weight)
    assert m.dtype == np.float32
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = convmat.conv(x, conv.weight, conv.bias)
    assert_allclose(y, conv(x).detach().numpy(), atol=1e-5)
    half = convmat.conv(x.to(torch.bfloat16), conv.weight.to(torch.bfloat16))
    assert half.dtype == np.float32
    assert convmat.conv(x.half(), conv.weight.half()).dtype == np.float16
    p, i = convmat.max_pool(x, 2, return_indices=True)
    assert convmat.max_unpool(torch.as_tensor(p), torch.as_tensor(i), 2).shape == x.shape


def _t(a: Any) -> Any:
    """The same data as a tensor that requires grad (floats) or a plain tensor."""
    t = torch.as_tensor(np.asarray(a))
    return t.requires_grad_() if t.is_floating_point() else t


_R = np.random.default_rng(0)
_X = _R.standard_normal((2, 4, 6, 6)).astype(np.float32)
_W = _R.standard_normal((2, 4, 3, 3)).astype(np.float32)
_TW = _R.standard_normal((4, 2, 2, 2)).astype(np.float32)
_IDX = np.array([[[0, 3], [12, 15]]])
_CALLS: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "conv": (lambda x, w: convmat_api().conv(x, w, padding=1), (_X, _W)),
    "conv_transpose": (lambda x, w: convmat_api().conv_transpose(x, w, stride=2), (_X, _TW)),
    "conv_transpose_scatter": (
        lambda x, w: convmat_api().conv_transpose(x, w, stride=2, method="scatter"),
        (_X, _TW),
    ),
    "zero_insert": (lambda x: convmat_api().zero_insert(x, 2), (_X,)),
    "conv_matrix": (lambda w: convmat_api().conv_matrix((4, 6, 6), w).toarray(), (_W,)),
    "conv_transpose_matrix": (
        lambda w: convmat_api().conv_transpose_matrix((4, 3, 3), w).toarray(),
        (_TW,),
    ),
    "conv_operator": (
        lambda w, v: convmat_api().conv_operator((4, 6, 6), w).matvec(v),
        (_W, _X[0].ravel()),
    ),
    "weight_matrix": (lambda x: convmat_api().weight_matrix(x, (2, 4, 3, 3)).toarray(), (_X,)),
    "deconvolve": (
        lambda y, w: convmat_api().deconvolve(y, w, (4, 6, 6), padding=1).x,
        (_X[0, :2].astype(np.float64), _W.astype(np.float64)),
    ),
    "conv_singular_values": (
        lambda w: convmat_api().conv_singular_values((4, 4, 4), w, padding=1),
        (_W,),
    ),
    "circular_singular_values": (
        lambda w: convmat_api().circular_singular_values((4, 4, 4), w),
        (_W,),
    ),
    "upsample": (lambda x: convmat_api().upsample(x, scale_factor=2, mode="bilinear"), (_X,)),
    "max_pool": (lambda x: convmat_api().max_pool(x, 2), (_X,)),
    "max_pool_matrix": (lambda x: convmat_api().max_pool_matrix(x[0], 2).toarray(), (_X,)),
    "max_unpool_matrix": (lambda i: convmat_api().max_unpool_matrix(i, (4, 4)).toarray(), (_IDX,)),
    "phase_means": (lambda x: convmat_api().phase_means(x[0, 0], 2), (_X,)),
    "periodic_energy": (lambda x: convmat_api().periodic_energy(x[0, 0], 2), (_X,)),
    "avg_pool": (lambda x: convmat_api().avg_pool(x, 2), (_X,)),
    "adaptive_avg_pool": (lambda x: convmat_api().adaptive_avg_pool(x, (4, 5)), (_X,)),
    "pad": (lambda x: convmat_api().pad(x, (1, 2, 0, 1), mode="reflect"), (_X,)),
    "pixel_shuffle": (lambda x: convmat_api().pixel_shuffle(x, 2), (_X,)),
    "pixel_unshuffle": (lambda x: convmat_api().pixel_unshuffle(x, 2), (_X,)),
    "unfold": (lambda x: convmat_api().unfold(x, 3), (_X,)),
    "fold": (lambda x: convmat_api().fold(convmat_api().unfold(x, 3), (6, 6), 3), (_X,)),
    "pixel_shuffle_as_conv_transpose": (
        lambda w: convmat_api().pixel_shuffle_as_conv_transpose(w, 2).weight,
        (_R.standard_normal((8, 4, 1, 1)),),
    ),
}


def convmat_api() -> Any:
    import convmat

    return convmat


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_every_array_argument_takes_a_tensor(name: str) -> None:
    fn, arrays = _CALLS[name]
    want = fn(*arrays)
    got = fn(*(_t(a) for a in arrays))
    assert type(got) is type(want)
    assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=0)


def test_import_convmat_imports_no_torch() -> None:
    code = "import sys, convmat; print('torch' in sys.modules, 'sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_spectral_norm_through_the_operator() -> None:
    """The top singular value from ARPACK on the operator equals the dense one."""
    from scipy.sparse.linalg import svds

    torch.manual_seed(6)
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    a = from_torch(conv, (2, 6, 6))
    top = svds(a.operator, k=1, return_singular_vectors=False, random_state=0)[0]
    dense = np.linalg.svd(a.matrix.toarray(), compute_uv=False)[0]
    assert math.isclose(top, dense, rel_tol=1e-10)


# ------------------------------------------------------------------ analyses on a model's map


def test_overlap_of_a_generator_is_its_stack_overlap() -> None:
    """The checkerboard predicted from the generator's structure, and seen on a constant."""
    from convmat import stack_overlap

    g = dcgan_generator().eval()
    a = from_torch(g, (8, 1, 1), at=torch.zeros(8, 1, 1))
    want = stack_overlap(
        (1, 1),
        [{"kernel_size": 4}] + [{"kernel_size": 4, "stride": 2, "padding": 1}] * 3,
    )
    np.testing.assert_array_equal(a.overlap(), want)
    assert from_torch(nn.ConvTranspose2d(1, 1, 4), (1, 1, 1)).overlap().shape == (4, 4)
    with pytest.raises(ValueError, match="must hold a convolution"):
        from_torch(nn.ReLU(), (1, 3), at=np.ones((1, 3))).overlap()
    pooled = from_torch(
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3)),
        (1, 9, 9),
        at=np.ones((1, 9, 9)),
    )
    with pytest.raises(ValueError, match="spatial layers must follow one another"):
        pooled.overlap()


def test_singular_values_and_layer_maps() -> None:
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ConvTranspose2d(4, 2, 4, 2, 1)).double()
    a = from_torch(net, (2, 12, 12))
    dense = np.linalg.svd(a.matrix.toarray(), compute_uv=False)
    assert_allclose(a.singular_values(3), dense[:3], rtol=1e-9)
    first = a.layer("0")
    assert first.input_shape == (2, 12, 12) and first.output_shape == (4, 12, 12)
    assert_allclose(
        first.singular_values(1)[0],
        np.linalg.svd(first.matrix.toarray(), compute_uv=False)[0],
        rtol=1e-9,
    )
    small = from_torch(nn.Linear(3, 2).double(), (3,))
    assert_allclose(
        small.singular_values(2), np.linalg.svd(small.matrix.toarray(), compute_uv=False)
    )
    with pytest.raises(ValueError, match=r"k must be between 1 and min\(M.shape\) = 2; got 3"):
        small.singular_values(3)
    with pytest.raises(ValueError, match=r"name must be one of the map's steps \['0', '1'\]"):
        a.layer("2")


class PoolUnpool(nn.Module):
    """SegNet-style: the unpooling writes where the paired pooling found its winners."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)

    def forward(self, x: Any) -> Any:
        y, i = self.pool(self.conv(x))
        z, j = F.max_pool1d(y.flatten(2), 2, return_indices=True)
        back = F.max_unpool1d(z, j, 2, output_size=y.flatten(2).shape)
        return self.unpool(back.view_as(y) * 2, i, output_size=x.shape)


def test_max_unpool_with_its_pools_indices() -> None:
    a = check_map(PoolUnpool(), (2, 6, 7), at=True)
    kinds = [r.kind for r in a.layers]
    assert {"MaxPool2d", "max_pool1d_with_indices", "max_unpool1d", "MaxUnpool2d"} <= set(kinds)
    with pytest.raises(ValueError, match=r"pool \(MaxPool2d\) is not linear; pass at="):
        from_torch(PoolUnpool(), (2, 6, 7))


@pytest.mark.parametrize(
    "model,shape", [(fcn_head, (4, 3, 3)), (LinearUNet, (1, 8, 8))], ids=["fcn_head", "linear_unet"]
)
def test_linear_models_read_alike_with_and_without_at(
    model: Callable[[], Any], shape: tuple[int, ...]
) -> None:
    m = model().double().eval()
    plain = from_torch(m, shape)
    at = from_torch(m, shape, at=torch.randn(*shape, dtype=torch.float64))
    assert_allclose(at.matrix.toarray(), plain.matrix.toarray(), rtol=0, atol=1e-13)
    assert_allclose(at.offset, plain.offset, rtol=0, atol=1e-13)


class OverlappingUnpool(nn.Module):
    def forward(self, x: Any) -> Any:
        z, j = F.max_pool1d(x, 3, stride=1, padding=1, return_indices=True)
        return F.max_unpool1d(z, j, 3, stride=1, padding=1, output_size=x.shape)


def test_overlapping_unpool_writes_each_winner_once() -> None:
    """A winner of several windows is written once (torch's forward), so the map's row holds
    one 1 — where autograd's gather would count the windows (its Jacobian is not the forward's
    derivative there)."""
    m = OverlappingUnpool()
    x = torch.tensor([[[0.0, 3.0, 1.0, 2.0, 5.0, 4.0]]], dtype=torch.float64)
    check_map(m, (1, 6), at=True, jacobian=False)
    b = from_torch(m, (1, 6), at=x[0])
    np.testing.assert_array_equal(b.matrix.toarray(), np.diag([0.0, 1, 0, 0, 1, 0]))
    near = x + 1e-9
    assert_allclose(b(near[0]), _out(m, near)[0], rtol=0, atol=1e-15)
