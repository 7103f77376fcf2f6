"""Diffusion models: noise schedules, training losses, and DDPM/DDIM samplers.

Everything here is a pure JAX function over arrays and a denoiser ``eps_fn(x, t)``; conditions and
guidance enter by wrapping ``eps_fn``.
"""

from jaxmicro.diffusion.guidance import one_point_correction as one_point_correction
from jaxmicro.diffusion.guidance import property_guidance as property_guidance
from jaxmicro.diffusion.guidance import two_point_guidance as two_point_guidance
from jaxmicro.diffusion.losses import LOSSES as LOSSES
from jaxmicro.diffusion.losses import diffusion_loss as diffusion_loss
from jaxmicro.diffusion.losses import gaussian_nll as gaussian_nll
from jaxmicro.diffusion.losses import loss_terms as loss_terms
from jaxmicro.diffusion.losses import normal_kl as normal_kl
from jaxmicro.diffusion.losses import vlb_terms as vlb_terms
from jaxmicro.diffusion.posterior import eps_from_output as eps_from_output
from jaxmicro.diffusion.posterior import model_log_variance as model_log_variance
from jaxmicro.diffusion.posterior import p_mean_variance as p_mean_variance
from jaxmicro.diffusion.posterior import q_posterior_mean as q_posterior_mean
from jaxmicro.diffusion.posterior import v_target as v_target
from jaxmicro.diffusion.repaint import path_sample as path_sample
from jaxmicro.diffusion.repaint import repaint_sample as repaint_sample
from jaxmicro.diffusion.repaint import repaint_schedule as repaint_schedule
from jaxmicro.diffusion.samplers import classifier_free_guidance as classifier_free_guidance
from jaxmicro.diffusion.samplers import ddim_sample as ddim_sample
from jaxmicro.diffusion.samplers import ddim_timesteps as ddim_timesteps
from jaxmicro.diffusion.samplers import ddpm_sample as ddpm_sample
from jaxmicro.diffusion.schedule import Schedule as Schedule
from jaxmicro.diffusion.schedule import cosine_schedule as cosine_schedule
from jaxmicro.diffusion.schedule import extract as extract
from jaxmicro.diffusion.schedule import linear_schedule as linear_schedule
from jaxmicro.diffusion.schedule import predict_eps as predict_eps
from jaxmicro.diffusion.schedule import predict_x0 as predict_x0
from jaxmicro.diffusion.schedule import q_sample as q_sample
from jaxmicro.diffusion.schedule import schedule_from_betas as schedule_from_betas
from jaxmicro.diffusion.schedule import zero_terminal_snr as zero_terminal_snr
