"""NIST P-256 public keys and ECDSA verification (FIPS 186-4), in pure Python.

The model checks the driver's export_public, sign and verify calls with these: a public key must
be d·G for the key's private scalar d, and a signature (r || s, 32 bytes each) must verify under
it. Jacobian coordinates; a scalar multiplication takes a few milliseconds, so results are cached
(the driver signs with deterministic ECDSA, so one key instance always yields one signature).

    public_key(scalar) -> bytes                 # 65 bytes: 04 || X || Y; None if not in [1, n)
    verify(public, digest, signature) -> bool   # digest: 32 bytes (SHA-256 size)
"""
import functools

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
_INFINITY = (0, 1, 0)


def _double(point):
    x, y, z = point
    if z == 0 or y == 0:
        return _INFINITY
    yy = y * y % P
    s = 4 * x * yy % P
    zz = z * z % P
    m = 3 * (x - zz) * (x + zz) % P          # a = -3
    x3 = (m * m - 2 * s) % P
    y3 = (m * (s - x3) - 8 * yy * yy) % P
    return x3, y3, 2 * y * z % P


def _add(p1, p2):
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else _INFINITY
    h, r = (u2 - u1) % P, (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    return x3, y3, h * z1 * z2 % P


def _multiply(k, point):
    result, addend = _INFINITY, (point[0], point[1], 1)
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    return result


def _affine(point):
    x, y, z = point
    if z == 0:
        return None
    zi = pow(z, -1, P)
    return x * zi * zi % P, y * zi * zi * zi % P


def _on_curve(x, y):
    return (y * y - (x * x * x - 3 * x + B)) % P == 0


@functools.lru_cache(maxsize=8192)
def public_key(scalar):
    """The uncompressed public key of a 32-byte private scalar, or None if it is invalid."""
    d = int.from_bytes(scalar, "big")
    if len(scalar) != 32 or not 0 < d < N:
        return None
    x, y = _affine(_multiply(d, G))
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


@functools.lru_cache(maxsize=8192)
def verify(public, digest, signature):
    """ECDSA verification of r || s over a 32-byte digest under an uncompressed public key."""
    if len(public) != 65 or public[0] != 4 or len(signature) != 64:
        return False
    qx, qy = int.from_bytes(public[1:33], "big"), int.from_bytes(public[33:], "big")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (_on_curve(qx, qy) and 0 < r < N and 0 < s < N):
        return False
    e = int.from_bytes(digest[:32], "big")
    w = pow(s, -1, N)
    point = _add(_multiply(e * w % N, G), _multiply(r * w % N, (qx, qy)))
    affine = _affine(point)
    return affine is not None and affine[0] % N == r


def recover(digest, signature):
    """The public keys under which r || s is a valid signature of the digest (ECDSA public key
    recovery, SEC 1 §4.1.6): usually two, one for each point R with x(R) = r (x = r + n too,
    when below p). Used to bind a generated key whose public key the model does not know yet."""
    if len(signature) != 64:
        return ()
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N):
        return ()
    e, r_inv, found = int.from_bytes(digest[:32], "big"), pow(r, -1, N), []
    for x in (r, r + N):
        rhs = (x * x * x - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if x >= P or y * y % P != rhs:
            continue
        for y_r in (y, P - y):
            point = _add(_multiply(s * r_inv % N, (x, y_r)), _multiply(-e * r_inv % N, G))
            affine = _affine(point)
            if affine is not None:
                found.append(b"\x04" + affine[0].to_bytes(32, "big")
                             + affine[1].to_bytes(32, "big"))
    return tuple(found)
