"""The HTML/Markdown report and its matplotlib figures."""
