"""A small terminal chart of daily stats: one bar per day, positive then negative, scaled to the widest."""

from __future__ import annotations

from rich.text import Text

from feedback_client import StatsBucket

BAR_WIDTH = 40


def daily_bars(buckets: list[StatsBucket], width: int = BAR_WIDTH) -> Text:
    widest = max((bucket.positive + bucket.negative for bucket in buckets), default=0)
    chart = Text()
    for bucket in buckets:
        votes = bucket.positive + bucket.negative
        # Round so that a day with any vote shows at least one cell of its larger side.
        cells = round(votes / widest * width) if widest else 0
        positive_cells = round(cells * bucket.positive / votes) if votes else 0
        negative_cells = cells - positive_cells
        chart.append(f"{bucket.start[:10]} ")
        chart.append("█" * positive_cells, style="green")
        chart.append("█" * negative_cells, style="red")
        chart.append(" " * (width - cells))
        chart.append(f" +{bucket.positive} -{bucket.negative}\n")
    return chart
