"""The MLIR-free runtime: cache, launch helpers, artifacts. Importing it never imports mlir."""
