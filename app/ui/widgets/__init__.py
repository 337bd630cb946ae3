"""Views: no psutil, sockets or process calls here; data arrives through the bridge."""
