"""Line charts as hand-written SVG (stdlib only), for the bench reports.

A chart is a dict: ``title``, ``x_label``, ``y_label``, ``log_x`` and ``log_y`` (True: that
axis is logarithmic, ticks at whole decades; a linear x axis has its ticks at the data's x
values, a linear y axis starts at zero) and ``series``: [(name, [(x, y), ...]), ...].
``document`` lays the charts side by side in one SVG document.
"""
import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 460, 320
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 30, 50      # margins: axes left/bottom, legend right
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def document(charts):
    """One SVG document holding ``charts`` side by side."""
    parts = [_chart(chart, index * WIDTH) for index, chart in enumerate(charts)]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH * len(charts)}" '
            f'height="{HEIGHT}" font-family="sans-serif" font-size="11">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "".join(parts) + "</svg>\n")


def _chart(chart, offset):
    points = [p for _, series in chart["series"] for p in series]
    scale = _Scale(points, chart.get("log_x", False), chart.get("log_y", False), offset)
    parts = [f'<g class="chart">\n<text x="{offset + LEFT}" y="18" font-size="13" '
             f'font-weight="bold">{escape(chart["title"])}</text>\n', scale.axes(chart)]
    for index, (name, series) in enumerate(chart["series"]):
        parts.append(_series(scale, name, series, COLOURS[index % len(COLOURS)], index))
    return "".join(parts) + "</g>\n"


def _series(scale, name, series, colour, index):
    coords = " ".join(f"{scale.x(x):.1f},{scale.y(y):.1f}" for x, y in sorted(series))
    dots = "".join(f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="3" '
                   f'fill="{colour}"/>' for x, y in series)
    legend_x, legend_y = scale.offset + WIDTH - RIGHT + 12, TOP + 16 * index + 8
    return (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
            f'{dots}<line x1="{legend_x}" y1="{legend_y}" x2="{legend_x + 14}" y2="{legend_y}" '
            f'stroke="{colour}" stroke-width="2"/><text x="{legend_x + 18}" y="{legend_y + 4}">'
            f'{escape(name)}</text>\n')


class _Scale:
    """Data -> pixel coordinates of one chart."""

    def __init__(self, points, log_x, log_y, offset):
        self.log_x, self.log_y, self.offset = log_x, log_y, offset
        self.xs = sorted({x for x, _ in points}) or [0, 1]
        xs = [_t(x, log_x) for x in self.xs]
        ys = [_t(y, log_y) for _, y in points] or [0, 1]
        self.x_range = _span(min(xs), max(xs), log_x)
        self.y_range = _span(min(ys) if log_y else 0, max(ys), log_y)

    def x(self, value):
        low, high = self.x_range
        return self.offset + LEFT + (_t(value, self.log_x) - low) / (high - low) \
            * (WIDTH - LEFT - RIGHT)

    def y(self, value):
        low, high = self.y_range
        return HEIGHT - BOTTOM - (_t(value, self.log_y) - low) / (high - low) \
            * (HEIGHT - TOP - BOTTOM)

    def axes(self, chart):
        left, bottom = self.offset + LEFT, HEIGHT - BOTTOM
        right = self.offset + WIDTH - RIGHT
        parts = [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/>',
                 f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="black"/>',
                 f'<text x="{(left + right) / 2}" y="{HEIGHT - 12}" text-anchor="middle">'
                 f'{escape(chart["x_label"])}</text>',
                 f'<text transform="translate({self.offset + 14},{(TOP + bottom) / 2}) '
                 f'rotate(-90)" text-anchor="middle">{escape(chart["y_label"])}</text>']
        for tick in (_ticks(*self.x_range, True) if self.log_x else self.xs):
            x = self.x(tick)
            parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                         f'stroke="black"/><text x="{x:.1f}" y="{bottom + 16}" '
                         f'text-anchor="middle">{_label(tick)}</text>')
        for tick in _ticks(*self.y_range, self.log_y):
            y = self.y(tick)
            parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                         f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" '
                         f'text-anchor="end">{_label(tick)}</text>')
        return "\n".join(parts) + "\n"


def _t(value, log):
    return math.log10(value) if log else value


def _span(low, high, log):
    """The axis range in transformed units: whole decades on log axes, a round top on linear
    ones; never empty."""
    if log:
        low, high = math.floor(low), math.ceil(high)
    elif high > low:
        step = _round_step((high - low) / 5)
        high = low + step * math.ceil((high - low) / step)
    return (low, high) if high > low else (low - 1 if log else low, high + 1)


def _round_step(rough):
    """The smallest 1, 2 or 5 x 10^n at least ``rough``."""
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def _ticks(low, high, log):
    """Tick values in data units: each decade on log axes, round steps on linear ones."""
    if log:
        return [10.0 ** power for power in range(int(low), int(high) + 1)]
    step = _round_step((high - low) / 5)
    return [low + step * index for index in range(int(round((high - low) / step)) + 1)]


def _label(value):
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:g}{unit}"
    return f"{value:.3g}"
