"""The benchmark: a synthetic input generator, an independent baseline and the runner."""
