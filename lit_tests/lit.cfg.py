# lit configuration for the tessera-opt tests (DESIGN §2): `make lit` runs
#   PATH=$(CURDIR)/.venv/bin:$PATH .venv/bin/lit -sv lit_tests
# RUN lines use `tessera-opt` and `FileCheck` (the pip `filecheck` package's `filecheck`).
import os
import shutil
import sys

import lit.formats

config.name = "tessera"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["Output", "lit.cfg.py"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = config.test_source_root

# The tools live next to the Python running lit (the venv's bin), or in the repo's .venv.
_repo = os.path.dirname(config.test_source_root)
_bins = [os.path.dirname(sys.executable), os.path.join(_repo, ".venv", "bin")]
_path = os.pathsep.join(_bins + [os.environ.get("PATH", "")])
config.environment["PATH"] = _path
for var in ("TESSERA_DEBUG", "HOME", "LANG", "LC_ALL", "PYTHONPATH"):   # PYTHONPATH: a worktree tests its own tessera
    if var in os.environ:
        config.environment[var] = os.environ[var]
config.environment["PYTHONIOENCODING"] = "utf-8"


def _tool(name):
    found = shutil.which(name, path=_path)
    if found is None:
        lit_config.fatal(f"cannot find '{name}' (looked in {', '.join(_bins)} and PATH); run `make` first")
    return found


config.substitutions.append(("FileCheck", _tool("filecheck")))
# whole words only: pass names such as tessera-optimize-gating-networks start with "tessera-opt"
config.substitutions.append((r"(?<![\w/-])tessera-opt(?![\w-])", _tool("tessera-opt")))
config.substitutions.append(("%python", sys.executable))
