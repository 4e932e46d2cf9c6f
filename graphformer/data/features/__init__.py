"""What the data computes per graph before training: positional encodings, shortest-path
distances."""
