"""Read the binary history form (docs/history-format.md "Binary form"); convert it to JSON Lines.

Public API::

    is_binary(path) -> bool               # a history directory (header.json + thread files)
    open_binary(path) -> History          # History.calls is a one-pass iterator of Call
    to_jsonl(path, stream) -> int         # writes the JSON Lines form, returns the call count
    Records(path, until)                  # the records invoked up to a stamp, without Call objects:
        .stamps[i], .names[i]             #   record i's call stamp and the key ids its Call names
        .history(indexes) -> History      #   the Calls of the chosen records only

The record layout comes from header.json (field name, offset, size, type), so the C record may
gain or move fields without breaking this reader. Which fields make an operation's ``args`` and
``out`` follows from ``history_format.OPS`` by naming convention (``field_of``): integer
``key``/``src`` are the record's ``key``, an attribute name is ``attrs.<name>``, an integer out
``key`` is ``out_key``, a byte string ``X`` is the bytes field ``X`` cut to ``X_len`` when the
layout has it, and a byte string the record does not carry comes from the header's ``constants``
(``<op>_<name>`` or ``<name>``).

A thread file whose header page counts ``committed`` complete records may hold one more record
with a non-zero call stamp: the call in flight when the run died. It is returned pending
(``ret``/``status`` None): it may or may not have taken effect. Without end.json the history is
incomplete (``complete`` False); that is not an error.
"""
import heapq
import itertools
import json
import operator
import os
import re
import struct

from scenarios.history.schema import (ATTRS, HEX, OPS, STATUS_NAME, Call, History,
                                      HistoryError, check_derived_bits, check_end, check_header)

THREAD_MAGIC = b"PSATHRD1"
_STRUCT_CODES = {"u64": "Q", "u32": "I", "i32": "i", "u16": "H", "u8": "B"}
_CONSTANT_ARGS = {"derive": {"kdf": "HKDF-SHA256"}}
CORE_FIELDS = ("call", "ret", "seq", "thread", "op", "status")
_NAMING = ("key", "out_key", "attrs.lifetime", "attrs.id")   # the fields naming key ids


def is_binary(path):
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "header.json"))


def read_json(path, what):
    try:
        with open(path, encoding="utf-8") as stream:
            obj = json.load(stream)
    except (OSError, ValueError, RecursionError) as error:
        raise HistoryError(f"{what}: unreadable ({error})") from None
    if type(obj) is not dict:
        raise HistoryError(f"{what}: not a JSON object")
    return obj


class Layout:
    """The record fields of header.json; ``select`` compiles a struct of the ones used."""

    def __init__(self, binary):
        self.size = _bounded(binary, "record_size", 1, 1 << 16)
        self.page = _bounded(binary, "header_page", 24, 1 << 20)
        self.fields = dict(_field(item, self.size) for item in _list(binary, "fields"))
        self.ops = _list(binary, "ops")
        if any(type(op) is not str for op in self.ops):
            raise HistoryError("header.json: binary.ops must be a list of operation names")
        self.statuses = _statuses(binary.get("statuses"))
        for name in CORE_FIELDS:
            if self.fields.get(name, (0, 0, "bytes"))[2] not in _STRUCT_CODES:
                raise HistoryError(f"header.json: the record layout has no integer {name!r} "
                                   "field")
        self.index, self.struct = {}, None

    def is_a(self, name, kind):
        """Whether the layout has field ``name`` of ``kind``: "bytes" or "int"."""
        actual = self.fields.get(name, (0, 0, None))[2]
        return actual == "bytes" if kind == "bytes" else actual in _STRUCT_CODES

    def select(self, names):
        """Compile the struct reading ``names`` (the call stamp first) and skipping the rest."""
        chosen = set(names) | set(CORE_FIELDS)
        for name in chosen - set(self.fields):
            raise HistoryError(f"header.json: the record layout has no {name!r} field")
        chosen = sorted(chosen, key=lambda n: self.fields[n][0])
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


def _bounded(binary, name, low, high):
    value = binary.get(name)
    if type(value) is not int or not low <= value <= high:
        raise HistoryError(f"header.json: binary.{name} must be an integer in {low}..{high}")
    return value


def _list(binary, name):
    value = binary.get(name)
    if type(value) is not list:
        raise HistoryError(f"header.json: binary.{name} must be a list")
    return value


def _field(item, record_size):
    """(name, (offset, size, type)) of one entry of binary.fields, inside the record."""
    if type(item) is not dict or type(item.get("name")) is not str \
            or type(item.get("type")) is not str:
        raise HistoryError("header.json: binary.fields entries need a name and a type")
    offset, size = item.get("offset"), item.get("size")
    if type(offset) is not int or type(size) is not int or offset < 0 or size < 1 \
            or offset + size > record_size:
        raise HistoryError(f"header.json: binary.fields {item['name']!r}: offset and size "
                           f"must lie within the {record_size}-byte record")
    return item["name"], (offset, size, item["type"])


def _statuses(table):
    """binary.statuses: decimal status code -> status name."""
    if type(table) is not dict:
        raise HistoryError("header.json: binary.statuses must be an object")
    statuses = {}
    for code, name in table.items():
        if not re.fullmatch(r"-?[0-9]{1,10}", code) or not -2**31 <= int(code) < 2**31 \
                or type(name) is not str or not STATUS_NAME.fullmatch(name):
            raise HistoryError(f"header.json: binary.statuses {code!r}: not a 32-bit code "
                               "and a status name")
        statuses[int(code)] = name
    return statuses


def _constants(binary):
    """binary.constants: name -> lower-case hex bytes."""
    constants = binary.get("constants") or {}
    if type(constants) is not dict or any(type(v) is not str or not HEX.fullmatch(v)
                                          for v in constants.values()):
        raise HistoryError("header.json: binary.constants must map names to lower-case hex")
    return constants


def field_of(name, is_out, is_hex, layout, op, constants):
    """(kind, source) reading JSON ``name`` of ``op`` from a record: kind "int" or "bytes"
    (source: a field name), "cut" (bytes cut to a length field; source: the two names) or
    "const" (source: the value)."""
    if is_hex:
        if layout.is_a(name, "bytes"):
            return ("cut", (name, f"{name}_len")) if layout.is_a(f"{name}_len", "int") \
                else ("bytes", name)
        for constant in (f"{op}_{name}", name):
            if constant in constants:
                return "const", constants[constant]
    else:
        field = ("out_key" if is_out else "key") if name in ("key", "src") else name
        field = f"attrs.{name}" if name in ATTRS else field
        if layout.is_a(field, "int"):
            return "int", field
    raise HistoryError(f"binary history: no record field for {op} "
                       f"{'out' if is_out else 'args'}.{name}")


class _Builder:
    """Makes args and out dicts of one operation from record tuples, sharing equal dicts."""

    def __init__(self, op, layout, constants):
        ints, hexes, out_ints, out_hexes = OPS[op]
        self.args = [(n, field_of(n, False, False, layout, op, constants)) for n in ints]
        self.args += [(n, field_of(n, False, True, layout, op, constants)) for n in hexes]
        self.out = [(n, field_of(n, True, False, layout, op, constants)) for n in out_ints]
        self.out += [(n, field_of(n, True, True, layout, op, constants)) for n in out_hexes]
        self.constant_args = _CONSTANT_ARGS.get(op, {})
        self.op = op

    def fields(self):
        for _, (kind, source) in self.args + self.out:
            if kind in ("int", "bytes"):
                yield source
            elif kind == "cut":
                yield from source

    def compile(self, index):
        """Resolve field names to tuple indexes once the struct is known."""
        self.make_args = _Maker(self.args, index, self.constant_args, self.op)
        self.make_out = _Maker(self.out, index, {})


class _Maker:
    """Record tuple -> args (or out) dict. The raw field values are fetched in one C call and
    looked up first: equal dicts are shared (most args and outs repeat), and only a miss pays
    for hex conversion and a new dict."""

    def __init__(self, fields, index, constants, op=None):
        sources = []
        for name, (kind, source) in fields:
            if kind == "cut":
                sources += [index[source[0]], index[source[1]]]
            elif kind != "const":
                sources.append(index[source])
        self.fields = fields
        self.constants = constants
        self.op = op           # the operation whose args are made (checked), or None
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
        if self.op is not None:
            check_derived_bits(self.op, values, f"a {self.op} record")
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
    try:
        stream = open(path, "rb")
    except OSError as error:
        raise HistoryError(f"{name}: unreadable ({error.strerror})") from None
    with stream:
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
    header, layout, builders = _reader(path)
    end = _read_end(os.path.join(path, "end.json"))
    streams = [_thread_stream(name, layout) for name in thread_files(path)]
    calls = _calls(layout, builders, heapq.merge(*streams), end)
    return History(path, header, calls, end is not None and end["complete"])


def _reader(path):
    """(header.json, the Layout selecting every field an operation reads, the _Builder (or the
    reason it cannot be made) per operation code) of the history directory ``path``."""
    header = read_json(os.path.join(path, "header.json"), "header.json")
    binary = header.get("binary")
    if type(binary) is not dict:
        raise HistoryError("header.json: no binary record description")
    check_header(header, "header.json")
    layout = Layout(binary)
    constants = _constants(binary)
    builders = [_builder(op, layout, constants) for op in layout.ops]
    names = {name for b in builders if type(b) is _Builder for name in b.fields()}
    layout.select(names | {name for name in _NAMING if layout.is_a(name, "int")})
    for builder in builders:
        if type(builder) is _Builder:
            builder.compile(layout.index)
    return header, layout, builders


def thread_files(path):
    """The paths of the thread files of the history directory ``path``, sorted."""
    names = sorted(name for name in os.listdir(path) if name.startswith("thread-"))
    for name in names:
        if not os.path.isfile(os.path.join(path, name)):
            raise HistoryError(f"{name}: not a regular file")
    return [os.path.join(path, name) for name in names]


def columns(path, binary, names):
    """Per thread file of the history directory ``path``, an iterator of (call, ret, *names)
    tuples of its records (``binary``: header.json's record description); a pending record has
    ret 0. A column scan for readers that need a few fields of every record, no Call objects."""
    layout = Layout(binary)
    layout.select(names)
    pick = operator.itemgetter(*[layout.index[name] for name in ("call", "ret", *names)])
    return [map(pick, _thread_stream(name, layout)) for name in thread_files(path)]


def _read_end(path):
    """end.json's "end" object, or None when the run did not finish."""
    if not os.path.lexists(path):
        return None
    end = read_json(path, "end.json").get("end")
    check_end(end, "end.json: end")
    return end


def _calls(layout, builders, records, end):
    """Call objects of merged record tuples, with the per-thread rules of the format checked."""
    i = layout.index
    i_ret, i_seq, i_thread = i["ret"], i["seq"], i["thread"]
    last, count, make = {}, 0, _call_maker(layout, builders)
    for count, record in enumerate(records, 1):
        stamp, ret, thread, seq = record[0], record[i_ret], record[i_thread], record[i_seq]
        previous = last.get(thread)
        if (seq != previous[0] + 1 or stamp <= previous[1]) if previous else seq != 0:
            raise HistoryError(f"record {count}: thread {thread} seq {seq} at {stamp}: "
                               "sequence or stamps out of order")
        if ret and ret <= stamp:
            raise HistoryError(f"record {count}: call {stamp} >= ret {ret}")
        last[thread] = (seq, ret or stamp)
        yield make(record, count)
    if end is not None and end["records"] != count:
        raise HistoryError(f"end.json: records is {end['records']} but the thread files "
                           f"hold {count} records")


def _call_maker(layout, builders):
    """record tuple, its number ``count`` in call order -> its Call (ret 0: pending)."""
    i = layout.index
    i_ret, i_seq, i_thread, i_op, i_status = i["ret"], i["seq"], i["thread"], i["op"], i["status"]
    statuses, names = layout.statuses, layout.ops

    def make(record, count):
        ret, code, status = record[i_ret], record[i_op], record[i_status]
        builder = _builder_of(builders, code, count)
        if not ret:
            return Call(record[i_thread], record[i_seq], names[code], record[0], None, None,
                        builder.make_args(record), {}, count + 1)
        status = statuses.get(status) or f"STATUS({status})"
        return Call(record[i_thread], record[i_seq], names[code], record[0], ret, status,
                    builder.make_args(record), builder.make_out(record) if status == "SUCCESS"
                    else {}, count + 1)
    return make


class Records:
    """The records of the binary history directory ``path`` invoked up to stamp ``until``, in
    call order, kept as tuples: ``stamps[i]`` is record i's call stamp, ``names[i]`` the key ids
    its Call names (args key or src, the out key of a success, the args id of a create with a
    non-zero lifetime; no 0), and ``history(indexes)`` makes the Calls of the chosen records
    only. For readers that need a few keys' calls of a long history
    (scenarios/checker/fast_check.py explains a violation on them)."""

    def __init__(self, path, until):
        self.path, self.header, self.layout, self.builders = path, *_reader(path)
        records = [r for name in thread_files(path) for r in itertools.takewhile(
            lambda r: r[0] <= until, _thread_stream(name, self.layout))]
        records.sort(key=operator.itemgetter(0))
        self.records = records
        self.stamps = [r[0] for r in records]
        namers = [self._namer(code) for code in range(len(self.layout.ops))]
        self.names = [namers[r[i_op]](r) if r[i_op] < len(namers) else ()
                      for i_op in (self.layout.index["op"],) for r in records]

    def _namer(self, code):
        """record tuple -> the key ids the Call of operation ``code`` names."""
        ints, _, out_ints, _ = OPS.get(self.layout.ops[code], ((), (), (), ()))
        i, success = self.layout.index, {v for v, n in self.layout.statuses.items()
                                         if n == "SUCCESS"}
        key = i.get("key") if {"key", "src"} & set(ints) else None
        out = i.get("out_key") if "key" in out_ints else None
        owned = (i.get("attrs.lifetime"), i.get("attrs.id")) if {"lifetime", "id"} <= set(ints) \
            else (None, None)
        i_ret, i_status = i["ret"], i["status"]

        def names(r):
            found = {r[key]} if key is not None else set()
            if out is not None and r[i_ret] and r[i_status] in success:
                found.add(r[out])
            if None not in owned and r[owned[0]]:
                found.add(r[owned[1]])
            found.discard(0)
            return tuple(found)
        return names

    def history(self, indexes):
        """The History of the records at ``indexes`` (increasing): their Calls only."""
        make = _call_maker(self.layout, self.builders)
        return History(self.path, self.header, [make(self.records[at], at + 1)
                                                for at in indexes], True)


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
