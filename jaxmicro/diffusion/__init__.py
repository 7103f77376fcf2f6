"""Diffusion models: noise schedules, training losses, and DDPM/DDIM samplers.

Everything here is a pure JAX function over arrays and a denoiser ``eps_fn(x, t)``; conditions and
guidance enter by wrapping ``eps_fn``.
"""

from jaxmicro.diffusion.guidance import (
    one_point_correction,
    property_guidance,
    two_point_guidance,
)
from jaxmicro.diffusion.losses import (
    LOSSES,
    diffusion_loss,
    gaussian_nll,
    loss_terms,
    normal_kl,
    vlb_terms,
)
from jaxmicro.diffusion.posterior import (
    eps_from_output,
    model_log_variance,
    p_mean_variance,
    q_posterior_mean,
    v_target,
)
from jaxmicro.diffusion.repaint import (
    path_sample,
    repaint_sample,
    repaint_schedule,
)
from jaxmicro.diffusion.samplers import (
    classifier_free_guidance,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
)
from jaxmicro.diffusion.schedule import (
    Schedule,
    cosine_schedule,
    extract,
    linear_schedule,
    predict_eps,
    predict_x0,
    q_sample,
    schedule_from_betas,
    zero_terminal_snr,
)

__all__ = [
    "LOSSES",
    "Schedule",
    "classifier_free_guidance",
    "cosine_schedule",
    "ddim_sample",
    "ddim_timesteps",
    "ddpm_sample",
    "diffusion_loss",
    "eps_from_output",
    "extract",
    "gaussian_nll",
    "linear_schedule",
    "loss_terms",
    "model_log_variance",
    "normal_kl",
    "one_point_correction",
    "p_mean_variance",
    "path_sample",
    "predict_eps",
    "predict_x0",
    "property_guidance",
    "q_posterior_mean",
    "q_sample",
    "repaint_sample",
    "repaint_schedule",
    "schedule_from_betas",
    "two_point_guidance",
    "v_target",
    "vlb_terms",
    "zero_terminal_snr",
]
