"""The report: plotly figures of a study (``figures``), each sized for a half-width optuna-dashboard card, written
as an HTML page or saved for optuna-dashboard (``page``). ``python -m nas.report`` runs ``nas.cli.report``."""

from .figures import CARD_HEIGHT, CARD_WIDTH, figures, trained
from .page import save_to_dashboard, write_html

__all__ = ["CARD_HEIGHT", "CARD_WIDTH", "figures", "save_to_dashboard", "trained", "write_html"]
