"""Analysis layer: the liveness taxonomy, the study's analyses, the HTML report.

``summarize(paths)`` reduces reply files to roaring bitmaps and returns a JSON-able summary
(one key per analysis); ``report.write_report`` renders it as one HTML file and
``tables.format_headline`` as a terminal table.
"""

from liveness.analysis.summary import ANALYSES, Summary, summarize, summarize_table

__all__ = ["ANALYSES", "Summary", "summarize", "summarize_table"]
