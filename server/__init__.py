"""The GPU side: model loading, samplers, the scheduler, training and benchmarks."""
