"""Integrations with other frameworks (DESIGN §13): `tessera.integrations.torch` (tessera functions as torch
ops with autograd) and `tessera.integrations.hf` (the GDN causal LM as a HuggingFace model). Importing this
package imports neither torch nor transformers; each submodule imports its framework."""
