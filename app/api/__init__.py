"""The loopback control API: the same core as the window, over HTTP."""
