#!/usr/bin/env python3
"""An independent verifier, written from docs/PROTOCOL.md and docs/CONFORMANCE.md alone, that
runs tests/vectors/ed25519.json and tests/vectors/documents.json (every step of §3.4, §3.1,
§5, §5.2 and §5.3) and tests/vectors/tlog.json (§13: RFC 6962 trees and proofs, signed-note
checkpoints, cosignature/v1, checkpoint-fork evidence). Python standard library plus `jsonschema` (draft 2020-12). Exit status 0
when every vector gets its stated verdict; 2 when `jsonschema` is missing.

Usage: python3 tests/vectors/verify.py [REPO_ROOT]
"""
import base64
import hashlib
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("SKIP: the Python module jsonschema is not installed", file=sys.stderr)
    sys.exit(2)

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")

# ---- Ed25519, PROTOCOL.md §3.1 ----
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
IDENTITY = (0, 1, 1, 0)


def add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(k, pt):
    out = IDENTITY
    while k:
        if k & 1:
            out = add(out, pt)
        pt = add(pt, pt)
        k >>= 1
    return out


def encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(b, strict):
    """The point `b` encodes, or None. strict: §3.1 step 1; else y >= p is reduced and a set
    sign bit with x = 0 is ignored (step 4's looser reading)."""
    n = int.from_bytes(b, "little")
    sign, y = n >> 255, n & ((1 << 255) - 1)
    if y >= P:
        if strict:
            return None
        y -= P
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign and strict:
        return None
    if x & 1 != sign:
        x = (P - x) % P
    return (x, y, 1, x * y % P)


def small_order(pt):
    return encode(mul(8, pt)) == encode(IDENTITY)


BASE = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"), True)


def verify_signature(key, message, sig):
    a = decode(key, True)
    if a is None:
        return "bad_key"
    if small_order(a):
        return "weak_key"
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return "bad_signature"
    r = decode(sig[:32], False)
    if r is None or small_order(r):
        return "bad_signature"
    k = int.from_bytes(hashlib.sha512(sig[:32] + key + message).digest(), "little") % L
    # [S]B - [k]A; -[k]A is [L - k]A only for A of prime order, so negate A itself.
    neg_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    check = add(mul(s, BASE), mul(k, neg_a))
    return "valid" if encode(check) == sig[:32] else "bad_signature"


# ---- the transparency log, PROTOCOL.md §13 ----
def sha(b):
    return hashlib.sha256(b).digest()


def leaf_hash(entry):
    return sha(b"\x00" + entry)


def node_hash(left, right):
    return sha(b"\x01" + left + right)


def mth(leaves):
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return "index_out_of_range"
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return "proof_wrong_length"
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "proof_wrong_length"
    return "valid" if r == root else "proof_root_mismatch"


def verify_consistency(old, new, proof, old_root, new_root):
    """RFC 9162 §2.1.4.2, with §13.1's rules for equal sizes and the empty tree."""
    if old > new:
        return "sizes_reversed"
    if old == new:
        if proof:
            return "proof_wrong_length"
        return "valid" if old_root == new_root else "proof_root_mismatch"
    if old == 0:
        return "valid" if not proof else "proof_wrong_length"
    if not proof:
        return "proof_wrong_length"
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return "proof_wrong_length"
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return "proof_wrong_length"
    return "valid" if fr == old_root and sr == new_root else "proof_root_mismatch"


def key_id(name, sig_type, key):
    return sha(name.encode() + b"\n" + bytes([sig_type]) + key)[:4]


def canonical_b64(text):
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def parse_note(b):
    """§13.2: (text, [(name, key id, data)]) or Refused."""
    if len(b) > 64 * 1024:
        raise Refused("note_too_large")
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("note_bad_text")
    if any(c != "\n" and ord(c) < 0x20 for c in s):
        raise Refused("note_bad_text")
    split = s.rfind("\n\n")
    if split < 0:
        raise Refused("note_no_signatures")
    text, sigs = s[: split + 1], s[split + 2 :]
    if not sigs or not sigs.endswith("\n"):
        raise Refused("note_no_signatures")
    out = []
    for line in sigs[:-1].split("\n"):
        if len(out) == 64:
            raise Refused("note_too_many_signatures")
        if not line.startswith("\u2014 ") or " " not in line[2:]:
            raise Refused("note_bad_signature_line")
        name, b64 = line[2:].split(" ", 1)
        raw = canonical_b64(b64)
        if not name or "+" in name or any(c.isspace() for c in name) or raw is None or len(raw) < 5:
            raise Refused("note_bad_signature_line")
        out.append((name, raw[:4], raw[4:]))
    return text, out


def parse_checkpoint(text):
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise Refused("checkpoint_lines")
    origin, size, root = lines[:3]
    if not origin or " " in origin or "+" in origin:
        raise Refused("checkpoint_origin")
    if not size.isdigit() or not size.isascii() or (size != "0" and size.startswith("0")):
        raise Refused("checkpoint_size")
    raw = canonical_b64(root)
    if raw is None or len(raw) != 32:
        raise Refused("checkpoint_root")
    return origin, int(size), raw


def open_checkpoint(note, origin, key):
    """§13.3: 'valid' or the refusal code."""
    try:
        text, sigs = parse_note(note)
        found, _, _ = parse_checkpoint(text)
        if found != origin:
            return "checkpoint_wrong_origin"
        verified = False
        for name, kid, data in sigs:
            if name == origin and kid == key_id(origin, 1, key):
                if len(data) != 64 or verify_signature(key, text.encode(), data) != "valid":
                    return "checkpoint_bad_signature"
                verified = True
        return "valid" if verified else "checkpoint_not_signed"
    except Refused as e:
        return e.code


def verify_cosignature(name, kid, data, key, text):
    """§13.4: the timestamp as text, or 'invalid'."""
    if kid != key_id(name, 4, key) or len(data) != 72:
        return "invalid"
    t = int.from_bytes(data[:8], "big")
    if t > 2**63 - 1:
        return "invalid"
    message = f"cosignature/v1\ntime {t}\n{text}".encode()
    return str(t) if verify_signature(key, message, data[8:]) == "valid" else "invalid"


def verify_evidence(b, origin, key):
    """§13.6: 'fork m n' or the refusal code."""
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            raise Refused("evidence_malformed")
        out = b[pos : pos + n]
        pos += n
        return out

    try:
        if take(8) != b"ENTRPCKF" or take(1) != b"\x01":
            return "evidence_malformed"
        notes = []
        for _ in range(2):
            n = int.from_bytes(take(4), "big")
            if n > 64 * 1024:
                return "evidence_malformed"
            notes.append(take(n))
        root_at_a = take(32)
        count = take(1)[0]
        if count > 66:
            return "evidence_malformed"
        proof = [take(32) for _ in range(count)]
        if pos != len(b):
            return "evidence_malformed"
    except Refused as e:
        return e.code
    sizes, roots = [], []
    for note in notes:
        verdict = open_checkpoint(note, origin, key)
        if verdict != "valid":
            return verdict
        _, size, root = parse_checkpoint(parse_note(note)[0])
        sizes.append(size)
        roots.append(root)
    if sizes[0] > sizes[1]:
        return "evidence_malformed"
    if verify_consistency(sizes[0], sizes[1], proof, root_at_a, roots[1]) != "valid":
        return "evidence_malformed"
    if root_at_a == roots[0]:
        return "evidence_consistent"
    return f"fork {sizes[0]} {sizes[1]}"


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_key(peer_id):
    """The Ed25519 key a peer id embeds (identity multihash 00 24 08 01 12 20 || key)."""
    n = 0
    for c in peer_id:
        n = n * 58 + B58.index(c)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(peer_id) - len(peer_id.lstrip("1"))) + raw
    prefix = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
    return raw[6:] if raw.startswith(prefix) and len(raw) == 38 else None


def run_tlog(v, expect):
    """Runs tlog.json; returns how many vectors it checked."""
    h = bytes.fromhex
    entries = [h(e) for e in v["entries"]]
    count = 0
    for r in v["roots"]:
        expect(f"root of {r['size']}", mth(entries[: r["size"]]).hex(), r["root"])
        count += 1
    for c in v["inclusion"]:
        got = verify_inclusion(c["index"], c["size"], h(c["leaf_hash"]), [h(p) for p in c["proof"]], h(c["root"]))
        expect("inclusion " + c["name"], got, c["verdict"])
        if c["verdict"] == "valid":
            expect("leaf hash " + c["name"], leaf_hash(entries[c["index"]]).hex(), c["leaf_hash"])
        count += 1
    for c in v["consistency"]:
        got = verify_consistency(
            c["old_size"], c["new_size"], [h(p) for p in c["proof"]], h(c["old_root"]), h(c["new_root"])
        )
        expect("consistency " + c["name"], got, c["verdict"])
        count += 1
    cp = v["checkpoint"]
    key = h(cp["publisher_key"])
    expect("publisher key id", key_id(cp["origin"], 1, key).hex(), cp["publisher_key_id"])
    for c in cp["cases"]:
        expect("checkpoint " + c["name"], open_checkpoint(c["note"].encode(), cp["origin"], key), c["verdict"])
        count += 1
    cs = v["cosignature"]
    wkey = h(cs["witness_key"])
    expect("witness peer id embeds its key", peer_key(cs["witness_peer_id"]), wkey)
    for c in cs["cases"]:
        _, sigs = parse_note((c["checkpoint_text"] + "\n" + c["signature_line"]).encode())
        name, kid, data = sigs[0]
        expect("cosignature " + c["name"], verify_cosignature(name, kid, data, wkey, c["checkpoint_text"]), c["verdict"])
        count += 1
    for c in v["fork_evidence"]:
        expect("fork evidence " + c["name"], verify_evidence(h(c["bytes"]), cp["origin"], key), c["verdict"])
        count += 1
    text, sigs = parse_note(cs["cosigned_note"].encode())
    expect("cosigned note lines", [s[0] for s in sigs], [cp["origin"], cs["witness_name"]])
    return count + 3


# ---- documents, PROTOCOL.md §3 ----
class Refused(Exception):
    def __init__(self, code):
        self.code = code


class Reader:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def take(self, n):
        if self.pos + n > len(self.b):
            raise Refused("truncated")
        out = self.b[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n):
        return int.from_bytes(self.take(n), "big")

    def str8(self):
        raw = self.take(self.uint(1))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise Refused("bad_field")


def rule(ok):
    if not ok:
        raise Refused("bad_field")


DAY_MIN, DAY_MAX = -719528, 2932896


def decode_envelope(b):
    if len(b) > 1048576:
        raise Refused("too_large")
    if len(b) < 8 or b[:8] != b"ENTRPDOC":
        raise Refused("bad_magic")
    r = Reader(b)
    r.take(8)
    if r.uint(1) != 1:
        raise Refused("unsupported_version")
    h = {"network_id": r.take(32)}
    t = r.str8()
    rule(1 <= len(t) <= 64 and t[0].islower() and all(c.islower() or c.isdigit() or c in "._" for c in t))
    h["type"], h["schema_version"] = t, r.uint(2)
    org = r.str8()
    rule(1 <= len(org) <= 32 and org[0] != "-" and all(c.isupper() or c.isdigit() or c == "-" for c in org))
    h["publisher"], h["key"], h["seq"] = org, r.take(32), r.uint(8)
    rule(h["seq"] >= 1)
    h["prev"] = r.take(32)
    rule((h["seq"] == 1) == (h["prev"] == bytes(32)))
    r.take(8)
    flags = r.uint(1)
    rule(flags & ~3 == 0)
    days = [int.from_bytes(r.take(4), "big", signed=True) for _ in range(2)]
    validity = []
    for bit, d in zip((1, 2), days):
        if not flags & bit:
            rule(d == 0)
            validity.append(None)
        else:
            rule(DAY_MIN <= d <= DAY_MAX)
            validity.append(d)
    rule(None in validity or validity[0] <= validity[1])
    h["validity"] = validity
    n = r.uint(1)
    rule(n <= 32)
    refs = []
    for _ in range(n):
        kind = r.uint(1)
        rule(1 <= kind <= 4)
        refs.append((kind, r.take(32)))
    h["references"] = refs
    n = r.uint(2)
    rule(n <= 4096)
    subjects = []
    for _ in range(n):
        year = r.uint(2)
        rule(1988 <= year <= 2100)
        code = r.str8()
        rule(len(code) in (2, 4, 6, 8, 10) and code.isdigit())
        rule(not subjects or subjects[-1] < (year, code.encode()))
        subjects.append((year, code.encode()))
    h["subjects"] = subjects
    body = r.take(r.uint(4))
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("bad_field")
    h["body"] = body
    r.take(64)
    if r.pos != len(b):
        raise Refused("trailing_bytes")
    return h


# ---- strict JSON, PROTOCOL.md §5.2 ----
def strict_json(raw):
    def pairs(items):
        names = [k for k, _ in items]
        if len(names) != len(set(names)):
            raise ValueError("a name appears twice")
        return dict(items)

    def integer(s):
        n = int(s)
        return n if -(2**63) <= n <= 2**64 - 1 else number(s)

    def number(s):
        f = float(s)
        if f in (float("inf"), float("-inf")):
            raise ValueError("beyond a double")
        return f

    def constant(s):
        raise ValueError("not JSON: " + s)

    def check(v, depth):
        if depth > 127:
            raise ValueError("nested too deep")
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, x in items:
            for s in (k, x):
                if isinstance(s, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in s):
                    raise ValueError("lone surrogate")
            if isinstance(x, (dict, list)):
                check(x, depth + 1)

    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=pairs,
            parse_int=integer,
            parse_float=number,
            parse_constant=constant,
        )
        if isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValueError("lone surrogate")
        if isinstance(value, (dict, list)):
            check(value, 1)
        return value
    except (ValueError, RecursionError):
        raise Refused("body_not_json")


# ---- schemas and projection, PROTOCOL.md §5, §5.3 ----
def schemas():
    d = os.path.join(ROOT, "schemas")
    load = lambda n: json.load(open(os.path.join(d, n)))
    shared = [load("common.json"), load("enforcement.notice.payload.json")]
    try:
        import referencing  # jsonschema >= 4.18
        import referencing.jsonschema

        registry = referencing.Registry().with_resources(
            (s["$id"], referencing.Resource.from_contents(s, default_specification=referencing.jsonschema.DRAFT202012))
            for s in shared
        )
        return lambda t: jsonschema.Draft202012Validator(load(t + ".json"), registry=registry)
    except ImportError:  # older jsonschema (Debian's 4.10)
        store = {s["$id"]: s for s in shared}

        def make(t):
            schema = load(t + ".json")
            resolver = jsonschema.RefResolver.from_schema(schema, store=store)
            return jsonschema.Draft202012Validator(schema, resolver=resolver)

        return make


TYPES = [
    "hs.amendment", "hs.correlation", "hs.nomenclature", "classification.opinion",
    "classification.decision", "classification.ruling", "enforcement.notice",
    "lifecycle.supersede", "lifecycle.correct", "lifecycle.withdraw",
]
KINDS = {"supersedes": 1, "corrects": 2, "withdraws": 3, "cites": 4}


def projection(t, body):
    def field_ok(ok):
        if not ok:
            raise Refused("body_field_invalid")

    def edition(s):
        field_ok(isinstance(s, str) and s.startswith("HS") and s[2:].isdigit() and 1988 <= int(s[2:]) <= 2100)
        return int(s[2:])

    def subj(year, code):
        c = code.replace(".", "")
        field_ok(len(c) in (2, 4, 6, 8, 10) and c.isdigit())
        return (year, c.encode())

    def obj(o):
        return subj(edition(o["edition"]), o["code"])

    def day(s):
        import datetime
        try:
            return (datetime.date.fromisoformat(s) - datetime.date(1970, 1, 1)).days
        except ValueError:
            raise Refused("body_field_invalid")

    out = []
    if t == "hs.amendment":
        f, to = edition(body["edition_from"]), edition(body["edition_to"])
        for op in body.get("operations", []):
            code = op.get("target", {}).get("code", "")
            out += {"delete": [subj(f, code)], "insert": [subj(to, code)]}.get(op["op"], [subj(f, code), subj(to, code)])
        for row in body.get("correlation", []):
            out += [subj(f, row["from"]), subj(to, row["to"])]
    elif t == "hs.correlation":
        f, to = edition(body["edition_from"]), edition(body["edition_to"])
        for row in body.get("rows", []):
            out += [subj(f, row["from"]), subj(to, row["to"])]
    elif t == "hs.nomenclature":
        e = edition(body["edition"])
        out += [subj(e, body["chapter"])] + [subj(e, x["code"]) for x in body.get("entries", [])]
    elif t.startswith("classification."):
        out += [obj(body["classification"])] + [obj(c) for c in body.get("cites", [])]
    elif t == "enforcement.notice":
        out += [obj(s) for s in body.get("header", {}).get("hs", [])]
    subjects = sorted(set(out))
    field_ok(len(subjects) <= 4096)
    v = body.get("validity", {})
    validity = [day(v["from"]) if "from" in v else None, day(v["to"]) if "to" in v else None]
    field_ok(None in validity or validity[0] <= validity[1])
    refs = []
    if t.startswith("lifecycle."):
        kind = {"lifecycle.supersede": 1, "lifecycle.correct": 2}.get(t, 3)
        refs.append((kind, bytes.fromhex(body["target"])))
    for r in body.get("references", []):
        refs.append((KINDS[r["kind"]], bytes.fromhex(r["id"])))
    field_ok(len(refs) <= 32)
    return subjects, validity, refs


def check_document(envelope, network_id, keyring, validator):
    h = decode_envelope(envelope)
    if h["network_id"] != network_id:
        raise Refused("wrong_network")
    message = b"entrepot/document/v1\x00" + envelope[:-64]
    verdict = verify_signature(h["key"], message, envelope[-64:])
    if verdict != "valid":
        raise Refused(verdict)
    org = keyring.get(h["publisher"])
    if org is None:
        raise Refused("unknown_publisher")
    if h["key"].hex() not in [k.lower() for k in org["keys"]]:
        raise Refused("key_not_authorized")
    if "types" in org and h["type"] not in org["types"]:
        raise Refused("type_not_permitted")
    if h["type"] not in TYPES:
        raise Refused("unknown_type")
    if h["schema_version"] != 1:
        raise Refused("unknown_schema_version")
    body = strict_json(h["body"])
    if not validator(h["type"]).is_valid(body):
        raise Refused("schema_invalid")
    if projection(h["type"], body) != (h["subjects"], h["validity"], h["references"]):
        raise Refused("header_mismatch")
    return h, body


def main():
    failures = 0

    def expect(name, got, want):
        nonlocal failures
        if got != want:
            failures += 1
            print(f"FAIL {name}: got {got}, expected {want}")

    vectors = os.path.join(ROOT, "tests", "vectors")
    ed = json.load(open(os.path.join(vectors, "ed25519.json")))
    message = bytes.fromhex(ed["message"])
    for c in ed["cases"]:
        got = verify_signature(bytes.fromhex(c["key"]), message, bytes.fromhex(c["signature"]))
        expect("ed25519 " + c["name"], got, c["verdict"])

    docs = json.load(open(os.path.join(vectors, "documents.json")))
    network_id = bytes.fromhex(docs["network"]["id"])
    name = docs["network"]["name"].encode()
    expect("network id", hashlib.sha256(b"entrepot/network/v1\x00" + name).digest(), network_id)
    keyring = {o["id"]: o for o in docs["keyring"]["organizations"]}
    validator = schemas()
    prev = bytes(32)
    for c in docs["valid"]:
        envelope = bytes.fromhex(c["envelope"])
        try:
            h, body = check_document(envelope, network_id, keyring, validator)
            expect(c["name"] + " id", hashlib.sha256(envelope).hexdigest(), c["id"])
            expect(c["name"] + " body", body, c["body"])
            expect(c["name"] + " prev", h["prev"], prev)
            prev = bytes.fromhex(c["id"])
        except Refused as e:
            expect(c["name"], e.code, "valid")
    for c in docs["invalid"]:
        try:
            check_document(bytes.fromhex(c["envelope"]), network_id, keyring, validator)
            got = "valid"
        except Refused as e:
            got = e.code
        expect(c["name"], got, c["error"])

    total = len(ed["cases"]) + len(docs["valid"]) + len(docs["invalid"])
    total += run_tlog(json.load(open(os.path.join(vectors, "tlog.json"))), expect)
    print(f"{total - failures} of {total} vectors as stated")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
