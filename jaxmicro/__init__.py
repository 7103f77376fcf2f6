"""jaxmicro: differentiable generation and reconstruction of microstructures in JAX.

Subpackages, one noun each (import them explicitly: ``from jaxmicro import orientations``):

- ``orientations``: quaternions, Euler angles, crystal symmetry (conventions stated there, once).
- ``harmonics``: hyperspherical harmonics (HSH), symmetrized HSH (SHSH), ROGSH bases.
- ``descriptors``: 1-/2-point statistics, variograms, mean variation, lineal path, slices.
- ``reconstruct``: descriptor-based reconstruction (MCR) with L-BFGS-B.
- ``synth``: Voronoi, Potts grain growth, RSA generators; ``data``: datasets; ``io``: file formats.
- ``grains``: segmentation and grain properties; ``metrics``: distribution and sample metrics.
- ``nn``: UNet and VAE (flax NNX); ``diffusion``: schedules, losses, samplers, guidance;
  ``fields``: Gaussian random fields; ``train``: sharded, resumable training.
- ``outpaint``: GrainPaint block planning and outpainting of large / CAD-shaped volumes.
- ``checks``: ``checked(fn)`` runs the value checks that ``jit``/``vmap``/``grad`` skip.
"""

__version__ = "0.1.0"
