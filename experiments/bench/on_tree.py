"""Run a script with ``graphformer`` imported from another source tree (e.g. an exported
older commit), even when this checkout is installed in editable mode, whose import finder
would otherwise win over ``PYTHONPATH``.

    git archive <commit> graphformer | tar -x -C /tmp/base
    python experiments/bench/on_tree.py /tmp/base experiments/bench/recipes.py --rounds 3
"""

from __future__ import annotations

import runpy
import sys

if __name__ == "__main__":
    tree, script, *args = sys.argv[1:]
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
    sys.path.insert(0, tree)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
