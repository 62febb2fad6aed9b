"""Networks of the conditional slice-trained generator (SliceGAN architecture, conditioned).

The 3D generator follows SliceGAN (Kench & Cooper, Nat. Mach. Intell. 3 (2021) 299, Table S1):
a stack of 3D transposed convolutions (kernel 4, stride 2, padding 2; the last padding 3) from a
latent field of spatial size ``l_z`` to a softmax over the phases. Conditioning follows the
conditional-SliceGAN / "constant label channels" idea of Gayon-Lombardo et al. (npj Comput. Mater. 6
(2020) 82): the normalised process parameters, each in [0, 1], are appended as constant channels to the
latent field (optionally to the input of every generator layer) and to the input image of every critic. Both networks are
fully convolutional, so a larger latent field gives a larger cube.

:class:`ConditionalCritic3D` is the optional volume critic (``TrainSettings.critic="volume"``, 3D training
data only): the 3D analogue of the slice critic, scoring whole cubes, as in 3D GANs for porous media
(Mosser, Dubrule & Blunt, Phys. Rev. E 96 (2017) 043309) and the 3D-critic discussion of Kench & Cooper (2021).

Output size: with ``k`` layers and latent size ``l_z >= 3``, the cube side is ``2**k * (l_z - 2)``
(``k = 5``: ``l_z = 4`` -> 64, ``l_z = 6`` -> 128).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _append_condition(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Concatenate ``cond`` (``b x d``) as constant channels to ``x`` (``b x c x *spatial``)."""
    if cond is None or cond.shape[1] == 0:
        return x
    shape = (cond.shape[0], cond.shape[1]) + (1,) * (x.dim() - 2)
    return torch.cat([x, cond.to(x.dtype).view(shape).expand(-1, -1, *x.shape[2:])], dim=1)


class ConditionalGenerator3D(nn.Module):
    """SliceGAN 3D generator with constant condition channels at every layer.

    Args:
        n_params: number of conditioning parameters ``d`` (0: unconditioned).
        latent_channels: channels of the latent noise field ``z``.
        widths: channels of the hidden layers (one transposed convolution each); one more layer
            maps to ``n_phases``.
        n_phases: phases of the output (3: pore, AM, CBD).
        condition_every_layer: append the condition channels to the input of every layer (True) or
            only to the latent field (False, the default: the brief's "label channels on the latent").
            Every-layer conditioning let a CPU-trained model collapse onto a noise-independent pattern.

    Shapes:
        ``forward(z: b x latent_channels x l_z x l_z x l_z, cond: b x d)`` -> ``b x n_phases x L x L x L``
        (softmax probabilities; with ``logits=True`` the scores before the softmax),
        ``L = 2**(len(widths) + 1) * (l_z - 2)``.
    """

    def __init__(self, n_params: int, latent_channels: int = 16, widths: tuple[int, ...] = (64, 32, 16, 8),
                 n_phases: int = 3, condition_every_layer: bool = False):
        super().__init__()
        self.n_params = int(n_params)
        self.condition_every_layer = bool(condition_every_layer)
        self.latent_channels = int(latent_channels)
        self.widths = tuple(int(w) for w in widths)
        self.n_phases = int(n_phases)
        chans = [self.latent_channels, *self.widths]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        extra = [self.n_params] + [self.n_params if self.condition_every_layer else 0] * len(self.widths)
        for c_in, c_out, e in zip(chans[:-1], chans[1:], extra):
            self.convs.append(nn.ConvTranspose3d(c_in + e, c_out, 4, 2, 2, bias=False))
            self.norms.append(nn.BatchNorm3d(c_out))
        self.final = nn.ConvTranspose3d(chans[-1] + extra[-1], self.n_phases, 4, 2, 3, bias=False)

    @property
    def n_layers(self) -> int:
        return len(self.widths) + 1

    def output_size(self, latent_size: int) -> int:
        """Cube side ``L`` produced from a latent field of side ``latent_size``."""
        return 2**self.n_layers * (latent_size - 2)

    def latent_size_for(self, size_voxels: int) -> int:
        """Smallest latent side whose output cube is at least ``size_voxels`` (>= 3)."""
        return max(3, 2 + math.ceil(size_voxels / 2**self.n_layers))

    def peak_bytes(self, batch: int, latent_size: int, bytes_per_value: int = 4) -> int:
        """Estimated peak memory of one forward pass [bytes]: the largest layer's input (condition
        channels included) plus two outputs (convolution, then normalisation/activation; the softmax
        of the last layer), float32 by default. Layer sides follow the transposed-convolution
        arithmetic (PyTorch ``ConvTranspose3d``: ``(l - 1) s - 2 p + k``)."""
        side = int(latent_size)
        chans = [self.latent_channels, *self.widths]
        extra = [self.n_params] + [self.n_params if self.condition_every_layer else 0] * len(self.widths)
        peak = 0
        for conv, c_in, e in zip([*self.convs, self.final], chans, extra):
            k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
            out_side = (side - 1) * s - 2 * p + k
            peak = max(peak, (c_in + e) * side**3 + 2 * conv.out_channels * out_side**3)
            side = out_side
        return int(batch) * peak * int(bytes_per_value)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None, logits: bool = False) -> torch.Tensor:
        x = z
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            c = cond if (i == 0 or self.condition_every_layer) else None
            x = torch.relu(norm(conv(_append_condition(x, c))))
        c = cond if (self.n_layers == 1 or self.condition_every_layer) else None
        # the last layer in float32 also under mixed precision: the scores rank voxels (phase_fractions="design")
        with torch.autocast(x.device.type, enabled=False):
            scores = self.final(_append_condition(x.float(), c))
        return scores if logits else torch.softmax(scores, dim=1)


class _ConditionalCritic(nn.Module):
    """Strided-convolution Wasserstein critic in ``ndim`` dimensions (kernel 4, stride 2, padding 1,
    LeakyReLU 0.2; a final kernel-3 convolution to one channel, mean over the final map), conditioned by
    constant label channels appended to its input."""

    ndim = 2

    def __init__(self, n_params: int, n_phases: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        conv = nn.Conv2d if self.ndim == 2 else nn.Conv3d
        self.n_params = int(n_params)
        chans = [int(n_phases) + self.n_params, *[int(w) for w in widths]]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [conv(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        layers.append(conv(chans[-1], 1, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_append_condition(x, cond)).mean(dim=tuple(range(1, self.ndim + 2)))


class ConditionalCritic2D(_ConditionalCritic):
    """Wasserstein critic on 2D slices, conditioned by constant label channels on its input.

    Args:
        n_params: number of conditioning parameters ``d``.
        n_phases: one-hot channels of the slice.
        widths: channels of the strided convolutions (kernel 4, stride 2, padding 1; SliceGAN critic).

    Shapes:
        ``forward(x: b x n_phases x H x W, cond: b x d)`` -> ``b`` scores (mean over the final map).
    """

    ndim = 2


class ConditionalCritic3D(_ConditionalCritic):
    """Wasserstein critic on whole 3D volumes, conditioned by constant label channels on its input.

    The 3D analogue of :class:`ConditionalCritic2D`: the same strided-convolution stack with ``Conv3d``
    (kernel 4, stride 2, padding 1, LeakyReLU 0.2), a final kernel-3 convolution to one channel and the mean
    over the final map (WGAN-GP critic output, Gulrajani et al., NeurIPS 2017; a critic seeing whole
    volumes as in Mosser et al., Phys. Rev. E 96 (2017) 043309, where SliceGAN's critics see 2D slices,
    Kench & Cooper 2021). The conditions are appended as constant channels to the input volume.

    Args:
        n_params: number of conditioning parameters ``d``.
        n_phases: one-hot channels of the volume.
        widths: channels of the strided convolutions; each halves the side, so the input side should be at
            least ``2**len(widths)``.

    Shapes:
        ``forward(x: b x n_phases x L x L x L, cond: b x d)`` -> ``b`` scores (mean over the final map).
    """

    ndim = 3
