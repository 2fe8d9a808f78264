"""The timeline of a checker violation's failing window, as inline SVG (no script needed).

Threads are lanes; each call is a bar from its call stamp to its return stamp, labelled with its
operation and status. Stamps are replaced by their rank among the window's stamps, so that a
window spread over millions of stamps stays readable (the order, which is all that matters for
linearizability, is kept; the real stamps are in each bar's tooltip). The call the checker blamed
is red; the calls that overlap it -- those it could not order against it -- are orange; a call
that never returned runs to the right edge, dashed.
"""
from html import escape

LANE_HEIGHT = 46
BAR_HEIGHT = 34
STEP = 96            # pixels per stamp rank: room for a two-line label (op, status)
LEFT = 64            # room for the lane labels
STATUS_CLASS = {"SUCCESS": "ok", None: "pending"}


def blamed_call(violation):
    """The window call the checker's message starts with (the one that cannot be explained)."""
    for call in violation["window"]:
        if call.get("text") and violation["message"].startswith(call["text"]):
            return call
    return violation["window"][-1] if violation["window"] else None


def overlaps(a, b):
    """Neither returned before the other was called (a pending call overlaps everything later)."""
    a_before_b = a["ret"] is not None and a["ret"] < b["call"]
    b_before_a = b["ret"] is not None and b["ret"] < a["call"]
    return not a_before_b and not b_before_a


def svg(violation):
    window = violation["window"]
    if not window:
        return "<p>(the checker gave no window)</p>"
    stamps = sorted({c["call"] for c in window} | {c["ret"] for c in window if c["ret"]})
    rank = {stamp: index for index, stamp in enumerate(stamps)}
    threads = sorted({c["thread"] for c in window})
    lane = {thread: index for index, thread in enumerate(threads)}
    width = LEFT + (len(stamps) + 1) * STEP
    height = len(threads) * LANE_HEIGHT + 24
    blamed = blamed_call(violation)
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="timeline of {len(window)} calls on {len(threads)} threads">']
    for thread, index in lane.items():
        y = index * LANE_HEIGHT
        parts.append(f'<line class="lane" x1="{LEFT}" y1="{y + LANE_HEIGHT // 2}" x2="{width}" '
                     f'y2="{y + LANE_HEIGHT // 2}"/><text class="lane-label" x="4" '
                     f'y="{y + LANE_HEIGHT // 2 + 4}">thread {thread}</text>')
    for call in window:
        parts.append(_bar(call, rank, lane[call["thread"]] * LANE_HEIGHT, width,
                          _highlight(call, blamed)))
    parts.append(f'<text class="axis" x="{LEFT}" y="{height - 6}">stamp order (rank) -&gt;'
                 f'</text></svg>')
    return "".join(parts)


def _highlight(call, blamed):
    if blamed is None:
        return ""
    if call is blamed:
        return " blamed"
    return " unordered" if overlaps(call, blamed) else ""


def _bar(call, rank, y, width, highlight):
    x1 = LEFT + rank[call["call"]] * STEP + STEP // 2
    x2 = LEFT + rank[call["ret"]] * STEP + STEP // 2 if call["ret"] else width - 4
    status = call["status"]
    css = STATUS_CLASS.get(status, "error") + highlight
    tooltip = (f"{call['text']}\ncall stamp {call['call']}, return stamp "
               f"{call['ret'] if call['ret'] else 'none (pending)'}, history line "
               f"{call.get('line', '?')}")
    top = y + (LANE_HEIGHT - BAR_HEIGHT) // 2
    return (f'<g class="call {css}"><title>{escape(tooltip)}</title>'
            f'<rect class="call" x="{x1}" y="{top}" width="{max(8, x2 - x1)}" '
            f'height="{BAR_HEIGHT}" rx="4"/>'
            f'<text x="{x1 + 4}" y="{top + 14}">{escape(call["op"])}</text>'
            f'<text x="{x1 + 4}" y="{top + 28}">{escape(status or "pending")}</text></g>')
