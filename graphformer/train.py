"""``python -m graphformer.train``: the same as ``graphformer-train``."""

from graphformer.cli.train import main

if __name__ == "__main__":
    main()
