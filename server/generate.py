"""Local generation for the CLI: load a model and stream one request's steps."""
from __future__ import annotations

from collections.abc import Iterator

from airquill.server.models.loader import load_adapter
from airquill.server.sampling.controls import Controls
from airquill.server.sampling.drivers import iter_denoise
from airquill.server.sampling.masked import MaskedDenoiser
from airquill.server.sampling.options import SamplingOptions
from airquill.shared.step import Step


def run_generate(*, model: str | None, prompt: str, length: int, options: SamplingOptions,
                 device: str | None = None, controls: Controls | None = None) -> tuple[Iterator[Step], dict]:
    adapter = load_adapter(model, device=device)
    if adapter.family == "uniform":  # canvases of random tokens: the model's own settings, then the asked ones
        from airquill.server.sampling.uniform import UniformDenoiser, UniformOptions

        uniform = UniformOptions.for_request(adapter, steps=options.steps, schedule=options.schedule,
                                             threshold=options.threshold, entropy_bound=options.entropy_bound,
                                             temperature=options.temperature, top_p=options.top_p, seed=options.seed)
        state = UniformDenoiser.for_generation(adapter, prompt, length, uniform, controls=controls)
    elif adapter.family == "continuous":  # embeddings blurring into tokens: steps per canvas and the seed apply
        from airquill.server.sampling.continuous import ContinuousDenoiser, ContinuousOptions

        state = ContinuousDenoiser.for_generation(adapter, prompt, length,
                                                  ContinuousOptions(steps=options.steps, seed=options.seed),
                                                  controls=controls)
    else:
        state = MaskedDenoiser.for_generation(adapter, prompt, length, options, controls=controls)

    def steps() -> Iterator[Step]:
        yield state.initial_step()
        yield from iter_denoise(adapter, state)

    return steps(), {"model": adapter.name}
