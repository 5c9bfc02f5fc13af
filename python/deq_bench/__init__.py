"""Peer-side benchmark drivers (PyTorch / transformers) run side by side with deq's benchmarks."""
