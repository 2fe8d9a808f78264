"""Read the binary history form (docs/history-format.md "Binary form"); convert it to JSON Lines.

Public API::

    is_binary(path) -> bool               # a history directory (header.json + thread files)
    open_binary(path) -> History          # History.calls is a one-pass iterator of Call
    to_jsonl(path, stream) -> int         # writes the JSON Lines form, returns the call count

The record layout comes from header.json (field name, offset, size, type), so the C record may
gain or move fields without breaking this reader. Which fields make an operation's ``args`` and
``out`` follows from ``history.OPS`` by naming convention (``_field_of``): integer ``key``/``src``
are the record's ``key``, an attribute name is ``attrs.<name>``, an integer out ``key`` is
``out_key``, a byte string ``X`` is the bytes field ``X`` cut to ``X_len`` when the layout has it,
and a byte string the record does not carry comes from the header's ``constants``
(``<op>_<name>`` or ``<name>``).

A thread file whose header page counts ``committed`` complete records may hold one more record
with a non-zero call stamp: the call in flight when the run died. It is returned pending
(``ret``/``status`` None): it may or may not have taken effect. Without end.json the history is
incomplete (``complete`` False); that is not an error.
"""
import heapq
import json
import operator
import os
import struct

from scenarios.history import ATTRS, OPS, Call, History, HistoryError, check_header

THREAD_MAGIC = b"PSATHRD1"
_STRUCT_CODES = {"u64": "Q", "u32": "I", "i32": "i", "u16": "H", "u8": "B"}
_CONSTANT_ARGS = {"derive": {"kdf": "HKDF-SHA256"}}
CORE_FIELDS = ("call", "ret", "seq", "thread", "op", "status")


def is_binary(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "header.json"))


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as stream:
            obj = json.load(stream)
    except (OSError, ValueError) as error:
        raise HistoryError(f"{what}: unreadable ({error})") from None
    if type(obj) is not dict:
        raise HistoryError(f"{what}: not a JSON object")
    return obj


class _Layout:
    """The record fields of header.json; ``select`` compiles a struct of the ones used."""

    def __init__(self, binary):
        try:
            self.size = binary["record_size"]
            self.page = binary["header_page"]
            self.fields = {f["name"]: (f["offset"], f["size"], f["type"])
                           for f in binary["fields"]}
            self.ops = list(binary["ops"])
            self.statuses = {int(code): name for code, name in binary["statuses"].items()}
        except (KeyError, TypeError, ValueError) as error:
            raise HistoryError(f"header.json: bad binary description ({error!r})") from None
        for name in CORE_FIELDS:
            if name not in self.fields:
                raise HistoryError(f"header.json: the record layout has no {name!r} field")
        self.index, self.struct = {}, None

    def has(self, name):
        return name in self.fields

    def select(self, names):
        """Compile the struct reading ``names`` (the call stamp first) and skipping the rest."""
        chosen = sorted(set(names) | set(CORE_FIELDS), key=lambda n: self.fields[n][0])
        fmt, at = "<", 0
        for name in chosen:
            offset, size, kind = self.fields[name]
            code = f"{size}s" if kind == "bytes" else _STRUCT_CODES.get(kind)
            if code is None or offset < at:
                raise HistoryError(f"header.json: field {name!r} has an unknown type or overlaps")
            fmt += "x" * (offset - at) + code
            self.index[name] = len(self.index)
            at = offset + size
        if self.index["call"] != 0:
            raise HistoryError("header.json: the call stamp must be the record's first field")
        self.struct = struct.Struct(fmt + "x" * (self.size - at))


def _field_of(name, is_out, is_hex, layout, op, constants):
    """(kind, source) reading JSON ``name`` of ``op`` from a record: kind "int" or "bytes"
    (source: a field name), "cut" (bytes cut to a length field; source: the two names) or
    "const" (source: the value)."""
    if is_hex:
        if layout.has(name):
            return ("cut", (name, f"{name}_len")) if layout.has(f"{name}_len") \
                else ("bytes", name)
        for constant in (f"{op}_{name}", name):
            if constant in constants:
                return "const", constants[constant]
    else:
        field = ("out_key" if is_out else "key") if name in ("key", "src") else name
        field = f"attrs.{name}" if name in ATTRS else field
        if layout.has(field):
            return "int", field
    raise HistoryError(f"binary history: no record field for {op} "
                       f"{'out' if is_out else 'args'}.{name}")


class _Builder:
    """Makes args and out dicts of one operation from record tuples, sharing equal dicts."""

    def __init__(self, op, layout, constants):
        ints, hexes, out_ints, out_hexes = OPS[op]
        self.args = [(n, _field_of(n, False, False, layout, op, constants)) for n in ints]
        self.args += [(n, _field_of(n, False, True, layout, op, constants)) for n in hexes]
        self.out = [(n, _field_of(n, True, False, layout, op, constants)) for n in out_ints]
        self.out += [(n, _field_of(n, True, True, layout, op, constants)) for n in out_hexes]
        self.constant_args = _CONSTANT_ARGS.get(op, {})

    def fields(self):
        for _, (kind, source) in self.args + self.out:
            if kind in ("int", "bytes"):
                yield source
            elif kind == "cut":
                yield from source

    def compile(self, index):
        """Resolve field names to tuple indexes once the struct is known."""
        self.make_args = _Maker(self.args, index, self.constant_args)
        self.make_out = _Maker(self.out, index, {})


class _Maker:
    """Record tuple -> args (or out) dict. The raw field values are fetched in one C call and
    looked up first: equal dicts are shared (most args and outs repeat), and only a miss pays
    for hex conversion and a new dict."""

    def __init__(self, fields, index, constants):
        sources = []
        for name, (kind, source) in fields:
            if kind == "cut":
                sources += [index[source[0]], index[source[1]]]
            elif kind != "const":
                sources.append(index[source])
        self.fields = fields
        self.constants = constants
        self.getter = operator.itemgetter(*sources) if len(sources) > 1 else \
            (lambda r, i=sources[0]: (r[i],)) if sources else (lambda r: ())
        self.shared = {}

    def __call__(self, record):
        raw = self.getter(record)
        found = self.shared.get(raw)
        if found is None:
            found = self._build(raw)
            if len(self.shared) >= 50_000:    # unique values (materials, fresh ids) pile up
                self.shared.clear()
            self.shared[raw] = found
        return found

    def _build(self, raw):
        values, at = {}, 0
        for name, (kind, source) in self.fields:
            if kind == "const":
                values[name] = source
            elif kind == "cut":
                values[name] = raw[at][:raw[at + 1]].hex()
                at += 2
            else:
                values[name] = raw[at].hex() if kind == "bytes" else raw[at]
                at += 1
        values.update(self.constants)
        return values


def _builder(op, layout, constants):
    """The op's _Builder, or the reason (a str) why its records cannot be read."""
    if op not in OPS:
        return f"unknown op {op!r}"
    try:
        return _Builder(op, layout, constants)
    except HistoryError as error:
        return str(error)


def _thread_stream(path, layout, block=8192):
    """A lazy iterator over one thread file's records as tuples, sorted by call, read ``block``
    records at a time; the record in flight when the run died (if any) comes last with its ret
    set to 0 (pending)."""
    name = os.path.basename(path)
    with open(path, "rb") as stream:
        head = stream.read(layout.page)
        if len(head) < 24 or head[:8] != THREAD_MAGIC:
            raise HistoryError(f"{name}: not a psa-stress thread file")
        _, size, committed = struct.unpack_from("<IIQ", head, 8)
        if size != layout.size:
            raise HistoryError(f"{name}: record size {size}, header.json says {layout.size}")
        left = committed
        while left:
            data = stream.read(min(left, block) * size)
            if len(data) < min(left, block) * size:
                raise HistoryError(f"{name}: truncated: fewer than {committed} records")
            left -= len(data) // size
            yield from layout.struct.iter_unpack(data)
        last = stream.read(size)
    if len(last) == size and struct.unpack_from("<Q", last)[0] != 0:
        record = layout.struct.unpack(last)
        ret = layout.index["ret"]
        yield record[:ret] + (0,) + record[ret + 1:]


def open_binary(path):
    """The History of the binary history directory ``path``; its calls are read lazily."""
    header = _read_json(os.path.join(path, "header.json"), "header.json")
    binary = header.get("binary")
    if type(binary) is not dict:
        raise HistoryError("header.json: no binary record description")
    check_header(header, "header.json")
    layout = _Layout(binary)
    constants = binary.get("constants") or {}
    builders = [_builder(op, layout, constants) for op in layout.ops]
    layout.select(name for b in builders if type(b) is _Builder for name in b.fields())
    for builder in builders:
        if type(builder) is _Builder:
            builder.compile(layout.index)
    end_path = os.path.join(path, "end.json")
    end = _read_json(end_path, "end.json").get("end") if os.path.exists(end_path) else None
    threads = sorted(name for name in os.listdir(path) if name.startswith("thread-"))
    streams = [_thread_stream(os.path.join(path, name), layout) for name in threads]
    calls = _calls(layout, builders, heapq.merge(*streams), end)
    return History(path, header, calls, end is not None and end.get("complete") is True)


def _calls(layout, builders, records, end):
    """Call objects of merged record tuples, with the per-thread rules of the format checked."""
    i = layout.index
    i_ret, i_seq, i_thread, i_op, i_status = i["ret"], i["seq"], i["thread"], i["op"], i["status"]
    statuses, names, last = layout.statuses, layout.ops, {}
    count = 0
    for count, record in enumerate(records, 1):
        stamp, ret, thread, code = record[0], record[i_ret], record[i_thread], record[i_op]
        seq = record[i_seq]
        previous = last.get(thread)
        if (seq != previous[0] + 1 or stamp <= previous[1]) if previous else seq != 0:
            raise HistoryError(f"record {count}: thread {thread} seq {seq} at {stamp}: "
                               "sequence or stamps out of order")
        if not ret:
            last[thread] = (seq, stamp)
            yield Call(thread, seq, names[code], stamp, None, None,
                       _builder_of(builders, code, count).make_args(record), {}, count + 1)
            continue
        if ret <= stamp:
            raise HistoryError(f"record {count}: call {stamp} >= ret {ret}")
        last[thread] = (seq, ret)
        builder = builders[code] if code < len(builders) else None
        if type(builder) is not _Builder:
            builder = _builder_of(builders, code, count)
        status = statuses.get(record[i_status]) or f"STATUS({record[i_status]})"
        yield Call(thread, seq, names[code], stamp, ret, status, builder.make_args(record),
                   builder.make_out(record) if status == "SUCCESS" else {}, count + 1)
    if end is not None and end.get("records") != count:
        raise HistoryError(f"end.json: records is {end.get('records')} but the thread files "
                           f"hold {count} records")


def _builder_of(builders, code, count):
    builder = builders[code] if code < len(builders) else f"unknown op number {code}"
    if type(builder) is str:
        raise HistoryError(f"record {count}: {builder}")
    return builder


def to_jsonl(path, stream):
    """Write the binary history at ``path`` as JSON Lines to ``stream``; return the call count.
    A cut-short run gets ``"complete": false`` and its call in flight per thread is pending."""
    history = open_binary(path)
    header = {k: v for k, v in history.header.items() if k != "binary"}
    stream.write(json.dumps(header, separators=(",", ":")) + "\n")
    count = 0
    for call in history.calls:
        record = {"thread": call.thread, "seq": call.seq, "op": call.op, "call": call.call,
                  "ret": call.ret, "status": call.status, "args": call.args}
        if call.out:
            record["out"] = call.out
        stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        count += 1
    end = {"end": {"records": count, "complete": history.complete}}
    stream.write(json.dumps(end, separators=(",", ":")) + "\n")
    return count
