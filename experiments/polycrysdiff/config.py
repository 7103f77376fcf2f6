"""PolyCrysDiff: 10-colour Voronoi volumes -> 3D KL-VAE -> latent UNet conditioned on grain count
and mean sphericity (cross-attention) -> decoded samples -> grain analysis (Table 1, Fig. 3).

Commands:

    python experiments/polycrysdiff/run.py --variant smoke --out runs/polycrysdiff_smoke
    python experiments/polycrysdiff/run.py --variant paper --out runs/polycrysdiff_paper

``paper`` follows §4.1: 2,000 volumes 64^3 x 3 in [-1, 1], 50-300 grains, regularity 0.5, ten
RGB colours by greedy colouring; VAE to a 16^3 latent; latent UNet with cross-attention on grain
count and mean sphericity; linear schedule T = 1000, beta 1.5e-3 -> 0.02; Adam with a cosine
learning rate and gradient clipping (the paper's 1e-6 learning rate at batch 1-2 for 400 epochs is
replaced by 1e-4 at larger batches: same optimizer family, far fewer steps).

``smoke`` keeps the paper's grain size in voxels: 32^3 volumes hold 1/8 of the voxels, so 6-38
grains (50/8 .. 300/8), and the 200-voxel segmentation threshold still applies; the latent is
8^3 (the paper's factor 4). The seed regularity is drawn per volume in [0, 1] (the paper: 0.5) so
that mean sphericity varies enough to be a condition (0.83-0.88 measured on voxelized grains).
Re-running continues where a run stopped (data, VAE, latents, UNet, evaluation).

``smoke`` is a CPU-scale model but not a CPU-time run: its 32^3 VAE costs 3.5-18 s per step on
the 2-core CPU (``python benchmarks/train_steps.py --variant smoke``; idle to loaded), so
``polycrysdiff-small`` is to be trained on a lent GPU (``scripts/train_shipped_models.sh``; its
model card will give the time). A CPU-budget version (a narrower VAE, fewer steps: 89 minutes)
did not make the smoke targets (docs/polycrysdiff.md).
"""

from __future__ import annotations

import dataclasses

from jaxmicro.nn import UNetConfig, VAEConfig, unet_config
from jaxmicro.train import DataConfig, TrainConfig, VAETrainConfig


@dataclasses.dataclass(frozen=True)
class PolyCrysDiffConfig:
    """One PolyCrysDiff experiment.

    Attributes:
        name: run name.
        size: edge of the volumes (voxels).
        num_volumes: training volumes.
        num_reference: independent reference volumes for Table 1 (two sets of this size give the
            reference-vs-reference floor).
        grains: (min, max) grain count.
        regularity: seed regularity, a value or a (low, high) range drawn per volume.
        num_colors: palette size.
        vae: the autoencoder run (its ``data`` is filled in by the run script).
        diffusion: the latent diffusion run (``data`` and ``autoencoder`` filled in).
        min_grain_size: segmentation speck threshold in voxels (§4.2).
        num_generated: samples for Table 1.
        num_targets: random targets for the R^2 of Fig. 3.
        repeats: samples at each of the four fixed targets (repeatability).
        guidance_scales: classifier-free guidance sweep.
        sampler_steps: DDIM steps of every evaluation sample.
        seed: data and evaluation seed.
        periodic: segment and measure grains with periodic boundaries (the Voronoi volumes wrap
            around; counting a wrapped grain once keeps the count comparable with ``n_grains``).
        watershed_h: h-maxima height (voxels) of the watershed that splits touching grains of
            one colour (§4.2); 7 split none of 693 grains of 32 smoke-size Voronoi volumes.
        guidance_scale: classifier-free guidance of the control experiments (Fig. 3).
        target_fractions: the four fixed targets of the repeatability test, as fractions of the
            training range (the paper's 75, 125, 175, 225 grains in 50-300).
        sample_batch_size: samples per sampler call (None: a whole setting at once).
        export_name: shipped model written by the ``export`` stage (None: no export).
    """

    name: str
    size: int
    num_volumes: int
    num_reference: int
    grains: tuple[int, int]
    regularity: tuple[float, float]
    num_colors: int
    vae: VAETrainConfig
    diffusion: TrainConfig
    min_grain_size: int = 200
    num_generated: int = 64
    num_targets: int = 20
    repeats: int = 4
    guidance_scales: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    sampler_steps: int = 50
    seed: int = 0
    periodic: bool = True
    watershed_h: float | None = 7.0
    guidance_scale: float = 1.0
    target_fractions: tuple[float, float, float, float] = (0.1, 0.3, 0.5, 0.7)
    sample_batch_size: int | None = None
    export_name: str | None = "polycrysdiff-small"


_SMOKE = PolyCrysDiffConfig(
    name="polycrysdiff_smoke",
    size=32,
    num_volumes=1024,
    num_reference=64,
    grains=(6, 38),
    regularity=(0.0, 1.0),
    num_colors=10,
    vae=VAETrainConfig(
        name="polycrysdiff_smoke_vae",
        model=VAEConfig(
            spatial_dims=3,
            in_channels=3,
            channels=(16, 32, 32),
            latent_channels=4,
            num_res_blocks=1,
            num_groups=8,
            mid_attention=False,
            periodic=True,  # the volumes wrap around (docs/polycrysdiff.md: seams)
        ),
        data=DataConfig(representation="identity", shape=()),
        batch_size=8,
        num_train_steps=3000,
        learning_rate=1e-3,
        warmup_steps=100,
        ema_decay=0.995,
        kl_weight=1e-6,
        log_every=50,
        checkpoint_every=250,
    ),
    diffusion=TrainConfig(
        name="polycrysdiff_smoke_unet",
        model=UNetConfig(
            spatial_dims=3,
            in_channels=4,
            channels=(32, 64),
            num_res_blocks=1,
            attention_levels=(1,),
            num_heads=2,
            num_groups=8,
            dropout=0.0,
            num_scalar_conditions=2,
            context_dim=64,
            periodic=True,
        ),
        data=DataConfig(representation="identity", shape=()),
        conditions=("n_grains", "mean_sphericity"),
        cond_dropout=0.1,
        num_diffusion_steps=1000,
        beta_start=1.5e-3,
        beta_end=0.02,
        batch_size=32,
        num_train_steps=10_000,
        learning_rate=5e-4,
        warmup_steps=200,
        ema_decay=0.999,
        log_every=50,
        checkpoint_every=500,
    ),
)

_PAPER = dataclasses.replace(
    _SMOKE,
    name="polycrysdiff_paper",
    size=64,
    num_volumes=2000,
    num_reference=200,
    grains=(50, 300),
    regularity=(0.5, 0.5),
    vae=dataclasses.replace(
        _SMOKE.vae,
        name="polycrysdiff_paper_vae",
        model=dataclasses.replace(
            _SMOKE.vae.model, channels=(32, 64, 128), num_res_blocks=2, mid_attention=True
        ),
        batch_size=8,
        num_train_steps=100_000,
        learning_rate=1e-4,
        log_every=100,
        checkpoint_every=5000,
    ),
    diffusion=dataclasses.replace(
        _SMOKE.diffusion,
        name="polycrysdiff_paper_unet",
        model=unet_config("polycrysdiff_latent"),
        batch_size=16,
        num_train_steps=200_000,
        learning_rate=1e-4,
        log_every=100,
        checkpoint_every=5000,
    ),
    num_generated=200,
    num_targets=50,
    sample_batch_size=50,
    export_name=None,
)


def get_config(variant: str = "smoke") -> PolyCrysDiffConfig:
    """The ``smoke`` (CPU) or ``paper`` (GPU) configuration."""
    configs = {"smoke": _SMOKE, "paper": _PAPER}
    if variant not in configs:
        raise ValueError(f"variant: expected one of {sorted(configs)}, got {variant!r}")
    return configs[variant]
