"""The synthetic manufacturing line: process parameters -> labelled 3-phase cathode volume.

A stochastic, physically motivated stand-in for a real coating line (docs/synthetic_line.md), used to train
the generator where no customer data exists and as the oracle its fidelity is measured against.
One call of :meth:`SyntheticLine.generate` runs four steps:

1. **Formulation -> phase volume fractions.** X_i = (1 - eps)(w_i/rho_i) / sum_j(w_j/rho_j)
   (Thomitzek et al., Sustainability 14 (2022) 1530; docs/process_model.md) from the AM weight fraction,
   the carbon:binder weight ratio and the porosity, via
   :class:`microdesign.process.formulation.Formulation` (its densities: NMC 4.75, carbon black 1.9,
   PVDF 1.78 g/cm3).
2. **Dry coating: polydisperse NMC spheres.** Log-normal radii (mean, coefficient of variation)
   are packed by random sequential addition, largest first, with a small allowed contact overlap,
   into a box that is taller along axis 0 (through-plane) than the final one, at the AM volume
   fraction of the *dry* coating, X_AM (1 - eps_dry)/(1 - eps) with eps_dry the dry porosity
   (typically 0.45-0.55 for NMC slot-die coatings; Meyer et al., Powder Technol. 2017).
3. **Calendering as compression.** Particle centres are compressed along axis 0 by the thickness
   ratio c = h_cal/h_dry = (1 - eps_dry)/(1 - eps) (mass conservation), so particles rearrange and
   their contacts overlap, and each particle is flattened at constant volume into a spheroid with
   semi-axes r (c^b, c^(-b/2), c^(-b/2)) (b = ``particle_flattening``). Without flattening (b = 0)
   the compressed centres stack particles into through-plane columns and the pore tortuosity
   factor comes out *lower* through-plane than in-plane, the opposite of real calendered
   electrodes; b = 0.5 restores the real direction (through-plane above in-plane, as in the NREL
   volume; docs/synthetic_line.md). The union of particles is then
   grown or shrunk uniformly (a level set of the distance to the nearest particle surface) so that
   the AM voxel count is exactly round(X_AM N).
4. **Carbon-binder domain by adhesion a.** A share a of the CBD voxels wets the particles: it is
   placed where a Gaussian-smoothed AM indicator is highest in the pore space, i.e. in the necks
   between touching particles first and then as films on their surfaces (the "bridge" placement of
   NREL MATBOX, Usseglio-Viretta et al., J. Electrochem. Soc. 165 (2018) A3403). The rest, 1 - a,
   forms agglomerates in the pore space: the top of a smooth Gaussian random field (correlation
   length ~ agglomerate size) weighted away from particle surfaces. Both counts are exact, so
   every phase fraction matches its target to within one voxel.

Trends that follow and are tested: lower porosity -> higher pore tortuosity factor; higher
adhesion -> lower AM-pore specific surface area (more of the AM surface is covered by CBD).

Not modelled: nano-porosity inside the CBD, particle cracking, non-spherical particles, gradients
through the thickness.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from microdesign.errors import ConfigError, check_voxel_size
from microdesign.phases import ACTIVE_MATERIAL, CBD, PORE
from microdesign.process.formulation import Formulation

logger = logging.getLogger(__name__)

#: Names of the process parameters this line understands (the first three are the design space's).
PARAMETER_NAMES = (
    "am_weight_fraction",
    "porosity",
    "cbd_adhesion",
    "particle_radius_mean_m",
    "particle_radius_cv",
)
PARAMETER_UNITS = {
    "am_weight_fraction": "1",
    "porosity": "1",
    "cbd_adhesion": "1",
    "particle_radius_mean_m": "m",
    "particle_radius_cv": "1",
}


@dataclass(frozen=True)
class GenerationInfo:
    """What one :meth:`SyntheticLine.generate` call did (recorded alongside a sample).

    Attributes:
        target_fractions: requested volume fraction per phase name (pore, active_material, cbd).
        achieved_fractions: voxel-counted fractions of the returned volume.
        compression: calendering thickness ratio h_cal/h_dry (1 = no calendering).
        n_particles: particles placed in the (extended) dry box.
        level_set_shift_voxels: uniform growth (+) or shrink (-) of the particles needed to hit the
            exact AM fraction [voxels].
        seed: RNG seed used.
    """

    target_fractions: dict[str, float]
    achieved_fractions: dict[str, float]
    compression: float
    n_particles: int
    level_set_shift_voxels: float
    seed: int


def phase_volume_fractions(
    am_weight_fraction: float, porosity: float, carbon_to_binder_weight_ratio: float = 1.0
) -> dict[str, float]:
    """Volume fractions of pore, AM and CBD for a formulation and a porosity.

    X_i = (1 - eps)(w_i/rho_i)/sum_j(w_j/rho_j) (Thomitzek et al. 2022; docs/process_model.md), CBD = carbon
    black + binder, by :class:`microdesign.process.formulation.Formulation` (its default densities).

    Returns:
        dict with keys ``pore``, ``active_material``, ``cbd`` summing to 1.
    """
    form = Formulation.from_am_weight_fraction(am_weight_fraction, carbon_to_binder_weight_ratio=carbon_to_binder_weight_ratio)
    x = form.phase_volume_fractions(porosity)
    return {"pore": float(x["pore"]), "active_material": float(x["active_material"]), "cbd": float(x["cbd"])}


class SyntheticLine:
    """Stochastic generator of labelled 3-phase cathode volumes from process parameters.

    Build from config (``conf/synth/default.yaml``) with ``hydra.utils.instantiate``.

    Args:
        particle_radius_mean_m: mean NMC particle radius [m] (default 3.5e-6 m: calibrated so that
            the AM surface area and the AM local thickness match the NREL NMC-1 calendered
            tomogram at its phase fractions, see docs/synthetic_line.md).
        particle_radius_cv: coefficient of variation of the log-normal radius distribution
            (0.3 default; NMC532/811 powders have d90/d10 ~ 2-3, Usseglio-Viretta et al. 2018).
        particle_radius_clip: radii are clipped to [mean/clip, mean*clip].
        dry_porosity: porosity of the coating after drying, before calendering (0.5; Meyer et al.,
            Powder Technol. 2017 report 0.45-0.55 for NMC slot-die coatings).
        max_contact_overlap: allowed overlap of touching particles in the dry packing, as a
            fraction of r_i + r_j (0.1: slight interpenetration where particles are pressed together).
        particle_flattening: exponent b of the constant-volume flattening of particles by the
            calendering compression c (through-plane semi-axis r c^b); 0.5 gives the through-plane >
            in-plane tortuosity of real calendered cathodes (measured, docs/synthetic_line.md).
        cbd_neck_length_m: smoothing length [m] of the AM indicator that ranks pore voxels for
            wetting CBD (necks first, then films); 1.6 µm, calibrated so that the share of AM surface
            left bare at adhesion 1 matches the NREL "bridge" CBD volume (docs/synthetic_line.md).
        cbd_agglomerate_size_m: correlation length [m] of the field that places non-wetting
            CBD agglomerates (1.5 µm; carbon-black/PVDF agglomerates are ~1-3 µm in FIB-SEM,
            Zielke et al., Adv. Energy Mater. 2015).
        carbon_to_binder_weight_ratio: carbon black : PVDF weight ratio (1:1).
        default_voxel_size_m: voxel size [m] used when ``generate`` gets none (0.398 µm, that of
            the NREL NMC-1 tomography, docs/public_data.md).
        insertion_attempts: random positions tried per particle before it is dropped.

    Raises:
        ConfigError: a non-positive size/length, cv < 0, porosity or overlap outside [0, 1).
    """

    def __init__(
        self,
        particle_radius_mean_m: float = 3.5e-6,
        particle_radius_cv: float = 0.3,
        particle_radius_clip: float = 2.5,
        dry_porosity: float = 0.5,
        max_contact_overlap: float = 0.1,
        particle_flattening: float = 0.5,
        cbd_neck_length_m: float = 1.6e-6,
        cbd_agglomerate_size_m: float = 1.5e-6,
        carbon_to_binder_weight_ratio: float = 1.0,
        default_voxel_size_m: float = 0.398e-6,
        insertion_attempts: int = 40,
    ) -> None:
        for name, value in (
            ("particle_radius_mean_m", particle_radius_mean_m),
            ("cbd_neck_length_m", cbd_neck_length_m),
            ("cbd_agglomerate_size_m", cbd_agglomerate_size_m),
            ("default_voxel_size_m", default_voxel_size_m),
            ("carbon_to_binder_weight_ratio", carbon_to_binder_weight_ratio),
        ):
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(name, value, "a positive number")
        if not (0 <= particle_radius_cv < 2):
            raise ConfigError("particle_radius_cv", particle_radius_cv, "a coefficient of variation in [0, 2)")
        if not particle_radius_clip >= 1:
            raise ConfigError("particle_radius_clip", particle_radius_clip, ">= 1")
        if not (0 < dry_porosity < 1):
            raise ConfigError("dry_porosity", dry_porosity, "a porosity in (0, 1)")
        if not (0 <= max_contact_overlap < 0.5):
            raise ConfigError("max_contact_overlap", max_contact_overlap, "a fraction in [0, 0.5)")
        if not (0 <= particle_flattening <= 1):
            raise ConfigError("particle_flattening", particle_flattening, "an exponent in [0, 1]")
        if int(insertion_attempts) < 1:
            raise ConfigError("insertion_attempts", insertion_attempts, ">= 1")
        self.particle_radius_mean_m = float(particle_radius_mean_m)
        self.particle_radius_cv = float(particle_radius_cv)
        self.particle_radius_clip = float(particle_radius_clip)
        self.dry_porosity = float(dry_porosity)
        self.max_contact_overlap = float(max_contact_overlap)
        self.particle_flattening = float(particle_flattening)
        self.cbd_neck_length_m = float(cbd_neck_length_m)
        self.cbd_agglomerate_size_m = float(cbd_agglomerate_size_m)
        self.carbon_to_binder_weight_ratio = float(carbon_to_binder_weight_ratio)
        self.default_voxel_size_m = float(default_voxel_size_m)
        self.insertion_attempts = int(insertion_attempts)

    # ------------------------------------------------------------------------------------------
    def resolve_parameters(self, params: Mapping[str, float]) -> dict[str, float]:
        """Full parameter set: ``params`` over the configured particle-size defaults, validated.

        Raises:
            ConfigError: a missing required parameter, an unknown one, or a value out of range.
        """
        unknown = sorted(set(params) - set(PARAMETER_NAMES))
        if unknown:
            raise ConfigError("params", unknown, f"names among {list(PARAMETER_NAMES)}")
        p = {
            "particle_radius_mean_m": self.particle_radius_mean_m,
            "particle_radius_cv": self.particle_radius_cv,
        }
        for name in ("am_weight_fraction", "porosity", "cbd_adhesion"):
            if name not in params:
                raise ConfigError(f"params[{name!r}]", None, "a value (required by the synthetic line)")
        p.update({k: float(v) for k, v in params.items()})
        if not (0 < p["am_weight_fraction"] <= 1):
            raise ConfigError("am_weight_fraction", p["am_weight_fraction"], "a weight fraction in (0, 1]")
        if not (0 < p["porosity"] < 1):
            raise ConfigError("porosity", p["porosity"], "a porosity in (0, 1)")
        if not (0 <= p["cbd_adhesion"] <= 1):
            raise ConfigError("cbd_adhesion", p["cbd_adhesion"], "a share in [0, 1]")
        if not (np.isfinite(p["particle_radius_mean_m"]) and p["particle_radius_mean_m"] > 0):
            raise ConfigError("particle_radius_mean_m", p["particle_radius_mean_m"], "a positive radius [m]")
        if not (0 <= p["particle_radius_cv"] < 2):
            raise ConfigError("particle_radius_cv", p["particle_radius_cv"], "a coefficient of variation in [0, 2)")
        return p

    def target_fractions(self, params: Mapping[str, float]) -> dict[str, float]:
        """Requested volume fraction per phase (``pore``, ``active_material``, ``cbd``)."""
        p = self.resolve_parameters(params)
        return phase_volume_fractions(p["am_weight_fraction"], p["porosity"], self.carbon_to_binder_weight_ratio)

    def generate(
        self,
        params: Mapping[str, float],
        shape: int | Sequence[int],
        voxel_size_m: float | None = None,
        seed: int = 0,
    ) -> np.ndarray:
        """One labelled volume.

        Args:
            params: ``am_weight_fraction``, ``porosity``, ``cbd_adhesion`` (required, dimensionless),
                optionally ``particle_radius_mean_m`` [m] and ``particle_radius_cv``.
            shape: cube edge ``L`` (-> ``L x L x L``), a 3-tuple, or a 2-tuple ``(H, W)`` for a
                planar section of a 3D structure (a synthetic 2D micrograph).
            voxel_size_m: voxel edge [m]; default ``default_voxel_size_m``.
            seed: RNG seed (same seed and inputs -> identical volume).

        Returns:
            uint8 volume of ``shape`` with 0 pore, 1 AM, 2 CBD; axis 0 is through-plane.

        Raises:
            ConfigError: invalid parameters or shape, or particles smaller than one voxel.
        """
        return self.generate_with_info(params, shape, voxel_size_m, seed)[0]

    def generate_with_info(
        self,
        params: Mapping[str, float],
        shape: int | Sequence[int],
        voxel_size_m: float | None = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, GenerationInfo]:
        """As :meth:`generate`, also returning a :class:`GenerationInfo`."""
        p = self.resolve_parameters(params)
        out_shape = _normalise_shape(shape)
        shape3 = out_shape if len(out_shape) == 3 else (out_shape[0], out_shape[1], 1)
        voxel = check_voxel_size("voxel_size_m", self.default_voxel_size_m if voxel_size_m is None else voxel_size_m,
                                 hint=None if voxel_size_m is not None else "the line's default_voxel_size_m")
        r_mean = p["particle_radius_mean_m"] / voxel
        if r_mean < 1.5:
            raise ConfigError("particle_radius_mean_m", p["particle_radius_mean_m"],
                              f"a mean radius of at least 1.5 voxels ({1.5 * voxel:.3g} m at this voxel size)")
        seed = int(seed)
        rng = np.random.default_rng(seed)
        target = phase_volume_fractions(p["am_weight_fraction"], p["porosity"], self.carbon_to_binder_weight_ratio)
        n_vox = int(np.prod(shape3))
        k_am = int(round(target["active_material"] * n_vox))
        k_cbd = int(round(target["cbd"] * n_vox))
        k_cbd = min(k_cbd, n_vox - k_am)

        compression = min(1.0, (1.0 - self.dry_porosity) / (1.0 - p["porosity"]))
        centres, radii = self._pack(rng, shape3, r_mean, p["particle_radius_cv"], target["active_material"], compression)
        beta = self.particle_flattening
        scales = (compression**beta, compression ** (-beta / 2), compression ** (-beta / 2))
        am, shift = _union_with_exact_count(centres, radii, shape3, k_am, scales)
        vol = np.full(shape3, PORE, dtype=np.uint8)
        vol[am] = ACTIVE_MATERIAL
        self._place_cbd(vol, am, k_cbd, p["cbd_adhesion"], voxel, rng)
        if len(out_shape) == 2:
            vol = vol[:, :, 0]
        counts = np.bincount(vol.reshape(-1), minlength=3) / vol.size
        info = GenerationInfo(
            target_fractions=dict(target),
            achieved_fractions={"pore": float(counts[PORE]), "active_material": float(counts[ACTIVE_MATERIAL]),
                                "cbd": float(counts[CBD])},
            compression=float(compression),
            n_particles=int(len(radii)),
            level_set_shift_voxels=float(shift),
            seed=seed,
        )
        logger.debug("synthetic volume %s: %s", out_shape, info)
        return np.ascontiguousarray(vol), info

    # ------------------------------------------------------------------------------------------
    def _pack(
        self,
        rng: np.random.Generator,
        shape3: tuple[int, int, int],
        r_mean: float,
        cv: float,
        am_fraction: float,
        compression: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random sequential addition of log-normal spheres in the dry box, then compression.

        Returns centres ``m x 3`` (voxel units, final frame) and radii ``m`` [voxels].
        """
        clip = self.particle_radius_clip
        r_lo, r_hi = r_mean / clip, r_mean * clip
        sigma = math.sqrt(math.log1p(cv * cv))
        mu = math.log(r_mean) - 0.5 * sigma * sigma
        margin = r_hi + 1.0
        # extended dry box: final box + margin on each side, axis 0 stretched by 1/compression
        lo = np.array([-margin, -margin, -margin])
        ext = np.array([(shape3[0] + 2 * margin) / compression, shape3[1] + 2 * margin, shape3[2] + 2 * margin])
        target_volume = am_fraction * compression * float(np.prod(ext))
        radii: list[float] = []
        total = 0.0
        while total < target_volume:
            batch = np.clip(rng.lognormal(mu, sigma, size=256), r_lo, r_hi)
            for r in batch:
                radii.append(float(r))
                total += 4.0 / 3.0 * math.pi * r**3
                if total >= target_volume:
                    break
        r_arr = np.sort(np.asarray(radii))[::-1]
        keep = 1.0 - self.max_contact_overlap
        cell = 2.0 * r_hi * keep
        grid: dict[tuple[int, int, int], list[int]] = {}
        acc_c = np.empty((len(r_arr), 3))
        acc_r = np.empty(len(r_arr))
        n = 0
        attempts = self.insertion_attempts
        for r in r_arr:
            cand = rng.random((attempts, 3)) * ext
            for c in cand:
                key = (int(c[0] // cell), int(c[1] // cell), int(c[2] // cell))
                idx: list[int] = []
                for dx in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        for dz in (-1, 0, 1):
                            lst = grid.get((key[0] + dx, key[1] + dy, key[2] + dz))
                            if lst:
                                idx.extend(lst)
                if idx:
                    ii = np.asarray(idx)
                    d2 = np.sum((acc_c[ii] - c) ** 2, axis=1)
                    if np.any(d2 < (keep * (acc_r[ii] + r)) ** 2):
                        continue
                acc_c[n] = c
                acc_r[n] = r
                grid.setdefault(key, []).append(n)
                n += 1
                break
        centres = acc_c[:n].copy()
        centres[:, 0] *= compression  # calendering: affine compression of the thickness
        centres += lo
        return centres, acc_r[:n].copy()

    def _place_cbd(
        self, vol: np.ndarray, am: np.ndarray, k_cbd: int, adhesion: float, voxel: float, rng: np.random.Generator
    ) -> None:
        """Write exactly ``k_cbd`` CBD voxels into the pore space of ``vol`` (in place)."""
        if k_cbd <= 0:
            return
        pore_idx = np.flatnonzero(~am.reshape(-1))
        k_cbd = min(k_cbd, pore_idx.size)
        k_wet = int(round(adhesion * k_cbd))
        k_agg = k_cbd - k_wet
        flat = vol.reshape(-1)
        taken = np.zeros(pore_idx.size, dtype=bool)
        mode = "reflect"
        if k_wet > 0:
            sigma_n = max(self.cbd_neck_length_m / voxel, 0.7)
            score = ndimage.gaussian_filter(am.astype(np.float32), sigma_n, mode=mode)
            # small rough texture so that films are not perfectly smooth iso-surfaces
            noise = ndimage.gaussian_filter(rng.standard_normal(am.shape).astype(np.float32), 1.0, mode=mode)
            score = score + 0.02 * noise / max(float(noise.std()), 1e-12)
            s = score.reshape(-1)[pore_idx]
            chosen = np.argpartition(-s, k_wet - 1)[:k_wet]
            taken[chosen] = True
        if k_agg > 0:
            sigma_a = max(self.cbd_agglomerate_size_m / voxel / 2.0, 0.7)
            field = ndimage.gaussian_filter(rng.standard_normal(am.shape).astype(np.float32), sigma_a, mode=mode)
            field /= max(float(field.std()), 1e-12)
            # prefer pore-space positions away from particle surfaces (non-wetting agglomerates)
            dist = distance_to_background(~am)
            field += 1.5 * np.minimum(dist / (2.0 * sigma_a), 1.0)
            s = field.reshape(-1)[pore_idx]
            s[taken] = -np.inf
            chosen = np.argpartition(-s, k_agg - 1)[:k_agg]
            taken[chosen] = True
        flat[pore_idx[taken]] = CBD


def _normalise_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        out: tuple[int, ...] = (int(shape),) * 3
    else:
        out = tuple(int(s) for s in shape)
    if len(out) not in (2, 3) or any(s < 2 for s in out):
        raise ConfigError("shape", shape, "a cube edge L >= 2, a 3-tuple or a 2-tuple (H, W) of sizes >= 2")
    return out


def _union_with_exact_count(
    centres: np.ndarray,
    radii: np.ndarray,
    shape3: tuple[int, int, int],
    k: int,
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> tuple[np.ndarray, float]:
    """Boolean mask of the union of spheres, grown/shrunk uniformly to exactly ``k`` voxels.

    Particle i is the spheroid with semi-axes ``r_i * scales``; the level set
    f(x) = min_i(|(x - c_i)/scales| - r_i) (distance to the nearest particle surface in the
    unflattened frame, negative inside) is evaluated on voxel centres within a padded box around each sphere; voxels outside
    every box get pad + their Euclidean distance to the evaluated region. The ``k`` voxels with the
    smallest f are AM. Returns the mask and the level (growth in voxels) of the k-th voxel.
    """
    n_vox = int(np.prod(shape3))
    mask = np.zeros(shape3, dtype=bool)
    if k <= 0:
        return mask, float("-inf")
    if k >= n_vox:
        mask[:] = True
        return mask, float("inf")
    pad = 3.0
    f = np.full(shape3, np.inf, dtype=np.float32)
    axes = [np.arange(s, dtype=np.float32) + 0.5 for s in shape3]
    sc = [np.float32(x) for x in scales]
    for c, r in zip(centres, radii):
        lo = [max(int(math.floor(c[a] - (r + pad) * scales[a])), 0) for a in range(3)]
        hi = [min(int(math.ceil(c[a] + (r + pad) * scales[a])) + 1, shape3[a]) for a in range(3)]
        if any(h <= l for l, h in zip(lo, hi)):
            continue
        d0 = ((axes[0][lo[0]:hi[0]] - c[0]) / sc[0]) ** 2
        d1 = ((axes[1][lo[1]:hi[1]] - c[1]) / sc[1]) ** 2
        d2 = ((axes[2][lo[2]:hi[2]] - c[2]) / sc[2]) ** 2
        d = np.sqrt(d0[:, None, None] + d1[None, :, None] + d2[None, None, :]) - np.float32(r)
        sub = f[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        np.minimum(sub, d, out=sub)
    far = ~np.isfinite(f)
    if far.any():
        f[far] = (pad + distance_to_background(far))[far]
    flat = f.reshape(-1)
    idx = np.argpartition(flat, k - 1)[:k]
    mask.reshape(-1)[idx] = True
    return mask, float(flat[idx].max())


def distance_to_background(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance [voxels] of every ``True`` voxel of ``mask`` to the nearest ``False`` one (0 on ``False``).

    Uses the optional ``edt`` package (Silversmith's multi-label EDT, the ``fast`` extra: about 4x faster
    at 128^3) where it is installed, else ``scipy.ndimage.distance_transform_edt`` (Maurer et al.,
    IEEE PAMI 25 (2003) 265), which gives the same distances. ``edt`` is a compiled wheel, so a
    machine that only carries the source (e.g. a GPU machine) still generates.

    Args:
        mask: boolean volume ``X x Y x Z``.

    Returns:
        float32 volume ``X x Y x Z``.
    """
    try:
        import edt
    except ImportError:
        return ndimage.distance_transform_edt(mask).astype(np.float32)
    return edt.edt(mask, black_border=False, parallel=1).astype(np.float32)
