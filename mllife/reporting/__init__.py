"""Reporting, the top floor: the status report (technical and client parts), its
sections, the gallery of predictions and the charts."""
