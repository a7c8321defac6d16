"""airquill: write with a text diffusion model whose every denoising step you can watch."""

__version__ = "0.1.0"
