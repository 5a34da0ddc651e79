"""Tables and figures from the pipeline's machine-readable outputs."""
