"""The desktop window (PySide6 + qasync). Only bridge.py touches the core."""
