"""Command-line tools: tessera-opt (`tessera.tools.opt`)."""
