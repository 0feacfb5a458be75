"""Experiments that regenerate the paper's tables and figures and our comparisons."""
