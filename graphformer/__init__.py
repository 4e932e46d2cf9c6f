"""graphformer: graph Transformers as DGL message passing.

Import graphformer before DGL: this installs the DGL compatibility hook (see ``_dgl``).
"""

from graphformer import _dgl

_dgl.install()

from graphformer import graphs, nn  # noqa: E402  (DGL may only be imported after install())

__version__ = "0.1.0"
__all__ = ["__version__", "graphs", "nn"]
