"""Generator sampling and checkpoint format: shapes, labels, determinism, bounds, corruption."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from microdesign.errors import ConfigError
from microdesign.generator import (
    CheckpointError,
    Generator,
    OutOfTrainingBoundsWarning,
    load_checkpoint,
    save_checkpoint,
)
from microdesign.generator.network import ConditionalGenerator3D
from microdesign.phases import PHASE_NAMES

NAMES = ("am_weight_fraction", "porosity", "cbd_adhesion")
BOUNDS = {"am_weight_fraction": (0.88, 0.97), "porosity": (0.25, 0.50), "cbd_adhesion": (0.0, 1.0)}
MID = {"am_weight_fraction": 0.92, "porosity": 0.35, "cbd_adhesion": 0.5}


@pytest.fixture(scope="module")
def gen() -> Generator:
    return Generator.untrained(NAMES, BOUNDS, voxel_size_m=4e-7, seed=3)


@pytest.fixture()
def saved(tmp_path, gen):
    return save_checkpoint(tmp_path / "m", gen.metadata, gen.network.state_dict())


@pytest.mark.parametrize("size", [1, 17, 32, 45])
def test_any_cube_size_shape_dtype_and_labels(gen, size):
    vol = gen.sample(MID, n=2, size_voxels=size, seed=0)
    assert vol.shape == (2, size, size, size)
    assert vol.dtype == np.uint8
    assert set(np.unique(vol)) <= {0, 1, 2}


def test_network_output_size_formula():
    net = ConditionalGenerator3D(2, 4, (8, 8, 4, 4))
    import torch

    for lz in (3, 4, 6):
        out = net(torch.zeros(1, 4, lz, lz, lz), torch.zeros(1, 2))
        assert out.shape[-1] == net.output_size(lz) == 32 * (lz - 2)
        # softmax over phases: probabilities sum to one
        assert torch.allclose(out.sum(1), torch.ones_like(out[:, 0]), atol=1e-5)
    assert net.output_size(net.latent_size_for(65)) >= 65


def test_seeded_and_reproducible_independent_of_batch(gen):
    a = gen.sample(MID, n=3, size_voxels=24, seed=7)
    b = gen.sample(MID, n=3, size_voxels=24, seed=7)
    c = gen.sample(MID, n=3, size_voxels=24, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    one_by_one = Generator(gen.network, gen.metadata, batch_size=1).sample(MID, n=3, size_voxels=24, seed=7)
    np.testing.assert_array_equal(a, one_by_one)


def test_out_of_bounds_refused_or_warned(gen):
    with pytest.raises(ConfigError, match="porosity.*training bounds"):
        gen.sample({**MID, "porosity": 0.6}, n=1, size_voxels=8)
    lenient = Generator(gen.network, gen.metadata, out_of_bounds="warn")
    with pytest.warns(OutOfTrainingBoundsWarning, match="porosity"):
        vol = lenient.sample({**MID, "porosity": 0.6}, n=1, size_voxels=8)
    assert vol.shape == (1, 8, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen.sample({**MID, "porosity": 0.50}, n=1, size_voxels=8)  # the bound itself is inside


def test_bad_requests_refused(gen):
    with pytest.raises(ConfigError, match="missing"):
        gen.sample({"porosity": 0.3, "cbd_adhesion": 0.5}, size_voxels=8)
    with pytest.raises(ConfigError, match="unknown"):
        gen.sample({**MID, "mass_loading_mg_cm2": 20.0}, size_voxels=8)
    with pytest.raises(ConfigError, match="finite"):
        gen.sample({**MID, "porosity": float("nan")}, size_voxels=8)
    with pytest.raises(ConfigError):
        gen.sample(MID, n=0, size_voxels=8)
    with pytest.raises(ConfigError):
        gen.sample(MID, n=1, size_voxels=0)
    with pytest.raises(ConfigError):
        Generator(gen.network, gen.metadata, out_of_bounds="ignore")


def test_checkpoint_round_trip(gen, saved):
    loaded = Generator.from_checkpoint(saved)
    assert loaded.parameter_names == NAMES
    assert loaded.parameter_units == ("1", "1", "1")
    assert loaded.training_bounds == BOUNDS
    assert loaded.phases == PHASE_NAMES
    assert loaded.voxel_size_m == 4e-7
    np.testing.assert_array_equal(loaded.sample(MID, 2, 20, seed=1), gen.sample(MID, 2, 20, seed=1))
    meta, state, folder = load_checkpoint(saved)
    assert meta.weights_sha256 and folder == saved and set(state) == set(gen.network.state_dict())


def test_corrupted_weights_rejected(saved):
    weights = saved / "generator.pt"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="SHA-256.*corrupted"):
        Generator.from_checkpoint(saved)


def _edit_meta(folder, **changes):
    path = folder / "metadata.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"phases": ["pore", "cbd", "active_material"]}, "phases"),
        ({"voxel_size_m": 0.4}, "voxel_size_m"),
        ({"dataset_hash": None}, "lacks"),
        ({"parameter_units": ["1", "1"]}, "units"),
        ({"training_bounds": {"am_weight_fraction": [0.9, 0.8], "porosity": [0, 1], "cbd_adhesion": [0, 1]}},
         "lower < upper"),
        ({"training_bounds": {"porosity": [0, 1]}}, "training_bounds"),
        ({"architecture": {"n_params": 3, "latent_channels": 4, "widths": [8, 8, 4, 8], "n_phases": 3}},
         "architecture"),
    ],
)
def test_mismatched_metadata_rejected(saved, changes, message):
    _edit_meta(saved, **changes)
    with pytest.raises(CheckpointError, match=message):
        Generator.from_checkpoint(saved)


@pytest.mark.parametrize("caveats", [["argmax"], {"auto": "x"}, {"argmax": ""}, {"argmax": 3}])
def test_bad_labelling_caveats_rejected(saved, caveats):
    _edit_meta(saved, labelling_caveats=caveats)
    with pytest.raises(CheckpointError, match="labelling_caveats"):
        Generator.from_checkpoint(saved)


def test_a_labelling_caveat_is_warned_for_its_labelling_only(saved, caplog):
    """A checkpoint's caveat for the argmax labels is logged when it samples with them, not with the design's."""
    _edit_meta(saved, labelling_caveats={"argmax": "porosity drifts by 0.1"})
    assert load_checkpoint(saved)[0].labelling_caveats == {"argmax": "porosity drifts by 0.1"}
    with caplog.at_level("WARNING", logger="microdesign.generator.sampler"):
        Generator.from_checkpoint(saved, phase_fractions="design")
    assert not [r for r in caplog.records if "porosity drifts" in r.getMessage()]
    with caplog.at_level("WARNING", logger="microdesign.generator.sampler"):
        Generator.from_checkpoint(saved, phase_fractions="argmax")
    assert [r for r in caplog.records if r.levelname == "WARNING" and "phase_fractions=argmax: porosity drifts by 0.1"
            in r.getMessage()]
    # saved again, the caveat stays with the weights
    meta, state, _ = load_checkpoint(saved)
    again = save_checkpoint(saved.parent / "again", meta, state)
    assert load_checkpoint(again)[0].labelling_caveats == {"argmax": "porosity drifts by 0.1"}


def test_truncated_or_missing_files_rejected(saved, tmp_path):
    (saved / "metadata.json").write_text('{"name": "x", ')
    with pytest.raises(CheckpointError, match="not valid JSON"):
        Generator.from_checkpoint(saved)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Generator.from_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="missing metadata.json"):
        Generator.from_checkpoint(tmp_path / "empty")


def test_expected_parameters_and_voxel_size_checked(saved):
    with pytest.raises(CheckpointError, match="conditions on"):
        Generator.from_checkpoint(saved, expected_parameter_names=["porosity"])
    with pytest.raises(CheckpointError, match="voxel_size_m"):
        Generator.from_checkpoint(saved, expected_voxel_size_m=1e-6)
    ok = Generator.from_checkpoint(saved, expected_parameter_names=list(reversed(NAMES)), expected_voxel_size_m=4e-7)
    assert ok.parameter_names == NAMES


def _old_sample(g: Generator, params, n: int, size: int, seed: int) -> np.ndarray:
    """The plain sampling path: argmax of the softmax output, int64 -> uint8, per batch."""
    import torch

    net = g.network
    lz = net.latent_size_for(size)
    start = (net.output_size(lz) - size) // 2
    z = torch.randn(n, net.latent_channels, lz, lz, lz, generator=torch.Generator().manual_seed(seed))
    cond = torch.as_tensor(g.normalise(params), dtype=torch.float32).expand(n, -1)
    with torch.inference_mode():
        prob = net(z, cond)[..., start:start + size, start:start + size, start:start + size]
        return prob.argmax(dim=1).to(torch.uint8).numpy()


@pytest.mark.parametrize("size", [16, 33])
def test_labels_bit_identical_to_the_argmax_path(gen, size):
    """The in-place uint8 labelling gives exactly the labels of torch.argmax over the phases."""
    new = gen.sample(MID, n=3, size_voxels=size, seed=5)
    np.testing.assert_array_equal(new, _old_sample(gen, MID, 3, size, 5))
    from microdesign.config import models_dir

    if (models_dir() / "synth3p_small").is_dir():  # the shipped, trained network (not noise)
        shipped = Generator.from_checkpoint("synth3p_small")
        p = {"am_weight_fraction": 0.9, "porosity": 0.3, "cbd_adhesion": 0.2}
        np.testing.assert_array_equal(shipped.sample(p, n=2, size_voxels=size, seed=11), _old_sample(shipped, p, 2, size, 11))


def test_argmax_uint8_breaks_ties_like_torch_argmax():
    import torch

    from microdesign.generator.sampler import argmax_uint8

    rng = torch.Generator().manual_seed(0)
    for k in (1, 2, 3, 5):
        scores = torch.randint(0, 3, (2, k, 9, 10, 11), generator=rng).float()  # many exact ties
        view = scores[..., 1:8, 2:9, 3:10]  # a strided crop, as in Generator.sample
        out = torch.full((2, 7, 7, 7), 77, dtype=torch.uint8)
        argmax_uint8(view, out)
        assert torch.equal(out, view.argmax(dim=1).to(torch.uint8)), k


def test_memory_estimate_counts_the_layers_and_refuses_what_does_not_fit(gen, monkeypatch):
    """peak_bytes follows the transposed-convolution sides: doubling the batch doubles it, a larger
    cube needs more; a request over the free memory is refused with the estimate before any work."""
    import psutil

    net = gen.network
    lz = net.latent_size_for(64)
    assert net.peak_bytes(2, lz) == 2 * net.peak_bytes(1, lz)
    assert net.peak_bytes(1, net.latent_size_for(128)) > 4 * net.peak_bytes(1, lz)
    # the final layer alone: 3 phases x output side^3 float32, twice (logits and softmax)
    assert net.peak_bytes(1, lz) >= 2 * 3 * net.output_size(lz) ** 3 * 4
    device, host = gen.memory_bytes(3, 64)
    assert host >= 3 * 64**3 and device > 0
    with pytest.raises(ConfigError, match=r"size_voxels.*GiB of host memory"):
        gen.sample(MID, n=1, size_voxels=100_000)

    class Small:
        available = device + host - 1  # one byte short

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Small)
    with pytest.raises(ConfigError, match="size_voxels"):
        gen.sample(MID, n=3, size_voxels=64)
    Small.available = device + host
    assert gen.sample(MID, n=3, size_voxels=64).shape == (3, 64, 64, 64)


@pytest.mark.parametrize("params", [MID, {"am_weight_fraction": 0.97, "porosity": 0.5, "cbd_adhesion": 0.0},
                                    {"am_weight_fraction": 0.88, "porosity": 0.25, "cbd_adhesion": 1.0}])
@pytest.mark.parametrize("size", [16, 33])
def test_design_fractions_give_every_cube_the_formulation_fractions(params, size):
    """phase_fractions="design": each cube's voxel-counted fractions are the formulation's volume
    fractions (Thomitzek et al. 2022) within one voxel; the same seed gives the same cubes."""
    from microdesign.synth.line import phase_volume_fractions

    gen = Generator.untrained(NAMES, BOUNDS, voxel_size_m=4e-7, seed=3, phase_fractions="design")
    vol = gen.sample(params, n=3, size_voxels=size, seed=2)
    target = phase_volume_fractions(params["am_weight_fraction"], params["porosity"])
    for cube in vol:
        got = np.bincount(cube.ravel(), minlength=3) / cube.size
        for label, name in enumerate(PHASE_NAMES):
            assert abs(got[label] - target[name]) <= 1.0 / cube.size, (name, got, target)
    np.testing.assert_array_equal(vol, gen.sample(params, n=3, size_voxels=size, seed=2))


def test_label_with_counts_is_the_argmax_at_its_own_counts_and_grows_a_phase_at_its_margin():
    import torch

    from microdesign.generator.sampler import label_with_counts

    rng = torch.Generator().manual_seed(1)
    scores = torch.randn(2, 3, 10, 11, 12, generator=rng)
    argmax = scores.argmax(dim=1)
    for b in range(2):
        counts = [int((argmax[b] == j).sum()) for j in range(3)]
        assert torch.equal(label_with_counts(scores[b:b + 1], counts)[0], argmax[b].to(torch.uint8))
    # five more pore voxels: the argmax's pore plus the five other voxels of largest pore margin
    counts = [int((argmax[0] == j).sum()) for j in range(3)]
    grown = label_with_counts(scores[:1], [counts[0] + 5, counts[1] - 5, counts[2]])[0]
    margin = scores[0, 0] - scores[0, 1:].amax(dim=0)
    added = (grown == 0) & (argmax[0] != 0)
    assert int(added.sum()) == 5 and bool((grown[argmax[0] == 0] == 0).all())
    rest = (grown != 0)
    assert float(margin[added].min()) >= float(margin[rest].max())
    ties = torch.randint(0, 2, (2, 3, 8, 8, 8), generator=rng).float()  # most margins tie: counts still exact
    labels = label_with_counts(ties, [100, 200, 212])
    assert [[int((labels[b] == j).sum()) for j in range(3)] for b in range(2)] == [[100, 200, 212]] * 2
    with pytest.raises(ValueError, match="summing to"):
        label_with_counts(scores[:1], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        label_with_counts(scores[:1], [-1, 2, 10 * 11 * 12 - 1])


def test_pore_neighbour_penalty_keeps_the_cbd_on_the_pore_facing_surface():
    """A solid slab against a pore slab, the network unsure between AM and CBD everywhere (AM ahead by
    0.1 logit deep inside the slab, 0.2 at its surface): without the penalty the CBD the counts ask for
    goes where the AM margin is smallest, inside the slab, and the AM faces the pore over the whole
    interface; with a penalty above the margin difference the CBD is the film on the pore-facing
    surface and no AM face touches the pore. Counts are exact either way."""
    import torch

    from microdesign.characterise.surface import interface_face_counts_per_axis
    from microdesign.generator.sampler import label_with_counts

    n = 8
    scores = torch.zeros(1, 3, n, n, n)
    scores[0, 0, :4] = 5.0                         # pore: the first half along x
    scores[0, 1, 4:] = 0.1                         # AM just ahead of CBD in the solid ...
    scores[0, 1, 4] = 0.2                          # ... a little more at the pore-facing layer
    counts = [4 * n * n, 3 * n * n, n * n]         # CBD: one layer's worth
    plain = label_with_counts(scores, counts)[0].numpy()
    film = label_with_counts(scores, counts, pore_neighbour_penalty=0.5)[0].numpy()
    for labels in (plain, film):
        assert np.bincount(labels.ravel(), minlength=3).tolist() == counts
    am_pore = [sum(interface_face_counts_per_axis(v, 0, 1)) for v in (plain, film)]
    assert am_pore == [n * n, 0]
    assert (film[4] == 2).all() and (plain[4] == 1).all()
    with pytest.raises(ValueError, match="pore_neighbour_penalty"):
        label_with_counts(scores, counts, pore_neighbour_penalty=-1.0)


def test_face_neighbour_counts_count_inside_neighbours_only():
    import torch

    from microdesign.generator.sampler import face_neighbour_counts

    mask = torch.zeros(1, 3, 3, 3, dtype=torch.bool)
    mask[0, 1, 1, 1] = True
    got = face_neighbour_counts(mask)[0]
    assert float(got.sum()) == 6 and float(got[1, 1, 1]) == 0 and float(got[0, 1, 1]) == 1
    full = face_neighbour_counts(torch.ones(1, 3, 3, 3, dtype=torch.bool))[0]
    assert float(full[1, 1, 1]) == 6 and float(full[0, 0, 0]) == 3  # a corner has 3 neighbours inside


def test_generator_applies_the_pore_neighbour_penalty_to_the_solid_only():
    """Through Generator.sample: the penalty keeps every pore voxel and the phase counts, moves AM and
    CBD, and lowers the AM-pore interface; 0 is the plain ranking; bad values are refused by name."""
    from microdesign.characterise.surface import interface_face_counts_per_axis

    for bad in (-0.5, float("nan"), "1", True):
        with pytest.raises(ConfigError, match="pore_neighbour_penalty"):
            Generator.untrained(NAMES, BOUNDS, phase_fractions="design", pore_neighbour_penalty=bad)
    assert Generator.untrained(NAMES, BOUNDS, pore_neighbour_penalty=np.float32(1.5)).pore_neighbour_penalty == 1.5

    def cubes(penalty):
        gen = Generator.untrained(NAMES, BOUNDS, voxel_size_m=4e-7, seed=3, phase_fractions="design",
                                  pore_neighbour_penalty=penalty)
        return gen.sample(MID, n=2, size_voxels=16, seed=1)

    plain, zero, pen = cubes(0.0), cubes(0), cubes(2.0)
    np.testing.assert_array_equal(plain, zero)
    np.testing.assert_array_equal(pen == 0, plain == 0)          # the pore is untouched
    for a, b in zip(pen, plain):
        np.testing.assert_array_equal(np.bincount(a.ravel(), minlength=3), np.bincount(b.ravel(), minlength=3))
    assert (pen != plain).mean() > 0.01
    am_pore = [sum(sum(interface_face_counts_per_axis(c, 0, 1)) for c in v) for v in (plain, pen)]
    assert am_pore[1] < 0.9 * am_pore[0], am_pore
    argmax = Generator.untrained(NAMES, BOUNDS, voxel_size_m=4e-7, seed=3, pore_neighbour_penalty=2.0)
    assert argmax.labelling == {"phase_fractions": "argmax", "pore_neighbour_penalty": 0.0}


def test_logits_are_the_scores_before_the_softmax(gen):
    import torch

    z = torch.randn(1, gen.network.latent_channels, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    cond = torch.full((1, 3), 0.5)
    with torch.inference_mode():
        assert torch.allclose(torch.softmax(gen.network(z, cond, logits=True), dim=1), gen.network(z, cond), atol=1e-6)


def test_phase_fraction_mode_checked_before_sampling():
    with pytest.raises(ConfigError, match="phase_fractions"):
        Generator.untrained(NAMES, BOUNDS, phase_fractions="exact")
    other = (("calendering_pressure_MPa",), {"calendering_pressure_MPa": (0, 10)})
    with pytest.raises(ConfigError, match="porosity"):  # the design's fractions need am_weight_fraction and porosity
        Generator.untrained(*other, phase_fractions="design")
    percent = ("%", "1", "1")  # a porosity in percent is not a fraction
    with pytest.raises(ConfigError, match="phase_fractions"):
        Generator.untrained(("porosity", "am_weight_fraction", "cbd_adhesion"), BOUNDS, parameter_units=percent,
                            phase_fractions="design")
    assert Generator.untrained(*other, phase_fractions="auto").phase_fractions == "argmax"
    assert Generator.untrained(NAMES, BOUNDS, phase_fractions="auto").phase_fractions == "design"


def test_voxel_counts_round_each_phase_to_within_one_voxel():
    from microdesign.generator.sampler import voxel_counts

    assert voxel_counts([0.5, 0.5, 0.0], 27) in {(14, 13, 0), (13, 14, 0)}  # an AM-only solid: no negative CBD
    assert voxel_counts([0.2, 0.3, 0.5], 1) == (0, 0, 1)
    rng = np.random.default_rng(0)
    for n in (1, 7, 48**3):
        f = rng.dirichlet([1, 1, 1])
        c = voxel_counts(f, n)
        assert sum(c) == n and min(c) >= 0 and max(abs(ci - fi * n) for ci, fi in zip(c, f)) < 1
    for bad in ([0.5, 0.6, 0.0], [0.5, float("nan"), 0.5], [1.2, -0.2, 0.0]):
        with pytest.raises(ValueError, match="fractions"):
            voxel_counts(bad, 10)


def test_design_labels_at_the_edge_of_the_formulation_and_on_tiny_cubes():
    """am_weight_fraction = 1 (no CBD) and a one-voxel cube: exact counts, no error."""
    gen = Generator.untrained(NAMES, BOUNDS, voxel_size_m=4e-7, seed=3, phase_fractions="design",
                              out_of_bounds="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfTrainingBoundsWarning)
        vol = gen.sample({"am_weight_fraction": 1.0, "porosity": 0.5, "cbd_adhesion": 0.5}, n=1, size_voxels=3)
    assert (vol == 2).sum() == 0 and abs(int((vol == 0).sum()) - 13.5) <= 0.5
    one = gen.sample(MID, n=1, size_voxels=1)
    assert one.shape == (1, 1, 1, 1)


def test_last_layer_scores_are_float32_under_mixed_precision(gen):
    import torch

    z = torch.randn(1, gen.network.latent_channels, 3, 3, 3)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert gen.network(z, torch.full((1, 3), 0.5), logits=True).dtype == torch.float32
