"""Sample-quality (torch-fidelity) and mode-collapse metrics."""
