"""Turning protocol requests into sampler states, with the server's limits and defaults."""
from __future__ import annotations

from dataclasses import replace

from airquill.server.models.base import ModelAdapter
from airquill.server.sampling.masked import MaskedDenoiser, Span
from airquill.server.sampling.options import SamplingOptions
from airquill.shared.protocol import Edit, Generate, Limits, ProtocolError, Sampling


def sampling_options(sampling: Sampling, defaults: SamplingOptions) -> SamplingOptions:
    given = {k: getattr(sampling, k) for k in sampling.__struct_fields__ if getattr(sampling, k) is not None}
    return replace(defaults, **given)


def check_limits(message: Generate | Edit, limits: Limits) -> None:
    rid = message.request_id
    steps = message.sampling.steps
    if steps is not None and steps > limits.max_steps:
        raise ProtocolError("limit", f"steps {steps} exceeds the limit of {limits.max_steps}", rid)
    if isinstance(message, Generate):
        if len(message.prompt) > limits.max_prompt_chars:
            raise ProtocolError("limit", f"prompt of {len(message.prompt)} characters exceeds the limit of "
                                         f"{limits.max_prompt_chars}", rid)
        if message.length > limits.max_length:
            raise ProtocolError("limit", f"length {message.length} exceeds the limit of {limits.max_length}", rid)
    elif len(message.text) > limits.max_prompt_chars:
        raise ProtocolError("limit", f"text of {len(message.text)} characters exceeds the limit of "
                                     f"{limits.max_prompt_chars}", rid)


def apply_replacements(message: Edit) -> tuple[str, list[Span]]:
    """Put replacement texts in place; return the new text and the spans still to generate (shifted)."""
    text, shift, spans = message.text, 0, []
    for span in sorted(message.spans, key=lambda s: s.start):
        if not 0 <= span.start <= span.end <= len(message.text):
            raise ProtocolError("invalid_request", f"span [{span.start}, {span.end}) lies outside the text "
                                                   f"(length {len(message.text)})", message.request_id)
        start, end = span.start + shift, span.end + shift
        if span.replacement is not None:
            text = text[:start] + span.replacement + text[end:]
            shift += len(span.replacement) - (span.end - span.start)
        else:
            spans.append(Span(start, end, span.new_length))
    return text, spans


def uniform_options(sampling: Sampling, adapter: ModelAdapter):
    """A uniform-noise model's settings for a request (the canvas is the model's; `block_size` does not apply)."""
    from airquill.server.sampling.uniform import UniformOptions

    return UniformOptions.for_request(adapter, steps=sampling.steps, schedule=sampling.schedule,
                                      threshold=sampling.threshold, entropy_bound=sampling.entropy_bound,
                                      temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed)


def continuous_options(sampling: Sampling):
    """A continuous model's settings for a request: `steps` per canvas and the seed (the noise schedule is the
    model's; commit schedules, temperature and top-p do not apply to embedding-space sampling)."""
    from airquill.server.sampling.continuous import ContinuousOptions

    return ContinuousOptions(steps=sampling.steps or ContinuousOptions.steps, seed=sampling.seed or 0)


CONTROLLED_FAMILIES = ("masked", "uniform", "continuous")  # families whose sampler takes controls


def build_state(adapter: ModelAdapter, message: Generate | Edit, defaults: SamplingOptions):
    """A sampler state (masked, uniform or continuous, by the model's family), or the final text when an edit only
    replaces text. Bad requests raise ProtocolError."""
    from airquill.server.sampling.controls import Controls

    controls = Controls.from_protocol(message.controls)
    extra = {}
    if controls is not None:
        if adapter.family not in CONTROLLED_FAMILIES:
            raise ProtocolError("unsupported", f"controls are not available for the {adapter.family} family yet",
                                message.request_id)
        extra["controls"] = controls
    if adapter.family == "uniform":
        from airquill.server.sampling.uniform import UniformDenoiser as denoiser

        options = uniform_options(message.sampling, adapter)
    elif adapter.family == "continuous":
        from airquill.server.sampling.continuous import ContinuousDenoiser as denoiser

        options = continuous_options(message.sampling)
    else:
        denoiser, options = MaskedDenoiser, sampling_options(message.sampling, defaults)
    try:
        if isinstance(message, Generate):
            return denoiser.for_generation(adapter, message.prompt, message.length, options, **extra)
        text, spans = apply_replacements(message)
        if not spans:
            return text
        return denoiser.for_infill(adapter, text, spans, options, **extra)
    except (ValueError, FileNotFoundError) as err:
        raise ProtocolError("invalid_request", str(err), message.request_id) from None
