"""One thin module per DVC stage: read params and inputs, call `pipeline`, write outputs."""
