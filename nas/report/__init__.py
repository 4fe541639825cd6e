"""The report: plotly figures of a study (``figures``), written as an HTML page or saved for optuna-dashboard
(``page``). ``python -m nas.report`` runs ``nas.cli.report``."""

from .figures import figures, trained
from .page import save_to_dashboard, write_html

__all__ = ["figures", "save_to_dashboard", "trained", "write_html"]
