"""Measuring GANs: the classifier (feature extractor and mode labeller), torch-fidelity metrics,
mode-collapse and diversity metrics, the metric registry (`registry.METRICS`, selected by
`eval.metrics`) and the evaluation that runs them (`evaluate`)."""
