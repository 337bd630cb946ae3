"""Export of traces and business events over open standards (OTLP/HTTP, CloudEvents).

See docs/architecture.md ("Export") and docs/performance.md ("Export").
"""

from app.core.export.exporter import Exporter
from app.core.export.settings import ExportSettings, ExportSettingsError, Signal

__all__ = ["ExportSettings", "ExportSettingsError", "Exporter", "Signal"]
