"""The history format's definitions (docs/history-format.md), shared by the JSON Lines reader
(scenarios/history/reader.py) and the binary one (scenarios/history/binary.py): the operations and
their fields, the call record, and the checks of the header, the end object and a derivation's
size.
"""
import re

FORMAT = "psa-stress-history"
VERSION = 1

ATTRS = ("lifetime", "id", "type", "bits", "usage", "alg")
CREATE_OPS = ("import", "generate", "derive", "copy", "derive_from")
_USE = (("key", "alg"), ("input",), (), ("material",))     # a key use with an output
# op -> (integer args, hex args, integer outs on SUCCESS, hex outs on SUCCESS)
OPS = {
    "import": (ATTRS, ("material",), ("key",), ()),
    "generate": (ATTRS, (), ("key",), ()),
    "derive": (ATTRS, ("secret", "salt", "info"), ("key",), ()),
    "copy": (("src", "lifetime", "id", "usage", "alg"), (), ("key",), ()),
    "destroy": (("key",), (), (), ()),
    "export": (("key",), (), (), ("material",)),
    "get_attributes": (("key",), (), ATTRS, ()),
    "purge": (("key",), (), (), ()),
    "open": (("key",), (), ("key",), ()),
    "close": (("key",), (), (), ()),
    "export_public": (("key",), (), (), ("material",)),
    "derive_from": (ATTRS + ("src",), ("salt", "info"), ("key",), ()),
    "sign": _USE, "cipher_encrypt": _USE, "cipher_decrypt": _USE, "mac": _USE,
    "verify": (("key", "alg"), ("hash", "input"), (), ()),
    "aead_encrypt": (("key", "alg"), ("nonce", "input"), (), ("material",)),
    "aead_decrypt": (("key", "alg"), ("nonce", "input"), (), ("material",)),
    "mac_multipart": (("key", "alg", "mid", "stage"), ("message",), (), ("material",)),
    "random": ((), (), (), ()), "reseed": ((), (), (), ()), "deplete": ((), (), (), ()),
    "init": ((), (), (), ()),      # psa_crypto_init, raced by the workers (--init-race)
}
# widest integer each field has in the driver's record (harness/history/record.h); others: 32 bits
U16_MAX = {"type": 0xFFFF, "bits": 0xFFFF}     # the 16-bit fields; the others are 32-bit
U32_MAX = 0xFFFFFFFF
HKDF_MAX_BITS = 255 * 256    # HKDF-SHA-256 outputs at most 255 blocks of 32 bytes
HEX = re.compile(r"(?:[0-9a-f]{2})*")
STATUS_NAME = re.compile(r"[A-Z][A-Z0-9_]*|STATUS\(-?[0-9]+\)")


class HistoryError(Exception):
    """The file breaks the history format; the message starts with "line N:"."""


class Call:
    """One call record of the history."""
    __slots__ = ("thread", "seq", "op", "call", "ret", "status", "args", "out", "line")

    def __init__(self, thread, seq, op, call, ret, status, args, out, line):
        self.thread = thread
        self.seq = seq
        self.op = op
        self.call = call
        self.ret = ret
        self.status = status
        self.args = args
        self.out = out
        self.line = line

    def __repr__(self):
        return (f"Call(t{self.thread}#{self.seq} {self.op} [{self.call},{self.ret}] "
                f"{self.status} line {self.line})")


class History:
    """A validated history: header, calls sorted by call stamp, end-line completeness."""
    __slots__ = ("path", "header", "calls", "complete")

    def __init__(self, path, header, calls, complete):
        self.path = path
        self.header = header
        self.calls = calls
        self.complete = complete


def check_header(obj, where):
    """The header object, checked; ``where`` prefixes error messages."""
    if obj.get("format") != FORMAT:
        raise HistoryError(f"{where}: header format is not {FORMAT!r}")
    if obj.get("version") != VERSION or type(obj.get("version")) is not int:
        raise HistoryError(f"{where}: unsupported version {obj.get('version')!r}")
    store = obj.get("key_store")
    if type(store) is not dict:
        raise HistoryError(f"{where}: header has no key_store object")
    threads = obj.get("threads")
    if threads is not None and (type(threads) is not int or not 1 <= threads <= 0xFFFF):
        raise HistoryError(f"{where}: header threads must be a positive 16-bit integer")
    faults = obj.get("faults")
    if faults is not None and (type(faults) is not dict or
                               type(faults.get("spec")) not in (str, type(None))):
        raise HistoryError(f"{where}: header faults must be an object with a string spec")
    return obj


def check_end(end, where):
    """The end object: integer records, boolean complete, and the driver's optional list of
    key ids still live in the core (scenarios/checker/final_state.py)."""
    if type(end) is not dict or type(end.get("records")) is not int \
            or type(end.get("complete")) is not bool:
        raise HistoryError(f"{where} needs integer records and boolean complete")
    live = end.get("live")
    if live is not None and (type(live) is not list or
                             any(type(key) is not int or not 0 <= key <= U32_MAX
                                 for key in live)):
        raise HistoryError(f"{where}: live must be a list of key ids")


def check_derived_bits(op, args, where):
    """A derivation's key size must fit the HKDF-SHA-256 output the model recomputes."""
    if op in ("derive", "derive_from") and args["bits"] > HKDF_MAX_BITS:
        raise HistoryError(f"{where}: args.bits must be at most {HKDF_MAX_BITS} (the longest "
                           "HKDF-SHA-256 output)")
