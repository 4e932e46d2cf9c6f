"""The layers, one per file: each is φ and □ written in the message-passing core, its math
in the docstring."""
