"""Report helpers for deq (plots of the C++ examples' JSON outputs)."""
