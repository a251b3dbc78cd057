#!/usr/bin/env python3
"""Reads a Tidemark root using nothing but docs/storage-format.md.

    python3 tools/read_root.py <root>            # prints every table as JSON lines

Output: one JSON object per table: {"table", "columns": [[name, type], ...],
"rows": [[value, ...], ...]} with rows in storage order; NULL is null, REAL and
DOUBLE as the hex digits of their bits (so no decimal rendering gets in the way),
UUIDs as 32 hex digits, binary as hex, DECIMAL(p,s) as text with s decimals. Checks every checksum the
format defines and exits non-zero, naming the file, on any mismatch.
"""
import json
import os
import struct
import sys


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


class Reader:
    def __init__(self, data, path):
        self.d, self.p, self.path = data, 0, path

    def take(self, n):
        if self.p + n > len(self.d):
            sys.exit(f"{self.path}: truncated")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def u8(self): return self.take(1)[0]
    def u32(self): return struct.unpack("<I", self.take(4))[0]
    def u64(self): return struct.unpack("<Q", self.take(8))[0]
    def i64(self): return struct.unpack("<q", self.take(8))[0]
    def bool(self): return self.u8() == 1
    def str(self): return self.take(self.u32()).decode("utf-8")


def framed(path, magic):
    data = open(path, "rb").read()
    if data[:8] != magic:
        sys.exit(f"{path}: wrong magic")
    major, _minor, body_len = struct.unpack("<HHI", data[8:16])
    if major != 1:
        sys.exit(f"{path}: unsupported major version {major}")
    if len(data) != 20 + body_len or crc32c(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        sys.exit(f"{path}: checksum or length mismatch")
    return Reader(data[16:16 + body_len], path)


TYPES = {1: "BOOLEAN", 2: "SMALLINT", 3: "INT", 4: "BIGINT", 5: "REAL", 6: "DOUBLE",
         7: "TIMESTAMP", 8: "DATE", 9: "VARCHAR", 10: "SYMBOL", 11: "UUID", 12: "BINARY",
         13: "TIMESTAMPTZ", 14: "JSON", 15: "JSONB", 16: "DECIMAL", 17: "DOUBLE[]",
         18: "TIMESTAMP_NS"}
FIXED = {"BOOLEAN": ("B", 1), "SMALLINT": ("h", 2), "INT": ("i", 4), "BIGINT": ("q", 8),
         "REAL": ("f", 4), "DOUBLE": ("d", 8), "TIMESTAMP": ("q", 8), "DATE": ("i", 4),
         "TIMESTAMPTZ": ("q", 8), "TIMESTAMP_NS": ("q", 8),
         "SYMBOL": ("i", 4), "UUID": (None, 16), "DECIMAL": (None, 16)}
NULL_FILE_TYPES = {"SMALLINT", "INT", "BIGINT", "REAL", "DOUBLE", "TIMESTAMP", "TIMESTAMPTZ",
                   "TIMESTAMP_NS", "DATE", "UUID", "DECIMAL"}


def read_meta(path):
    r = framed(path, b"TMMETA01")
    seq, _pb, _ts, _next = r.u64(), r.u8(), r.u32(), r.u32()
    cols = []
    for _ in range(r.u32()):
        cid, name, t = r.u32(), r.str(), TYPES[r.u8()]
        shown, scale = t, None
        if t == "DECIMAL":
            precision, scale = r.u8(), r.u8()
            shown = f"DECIMAL({precision},{scale})"
        elif t == "DOUBLE[]":
            shown = "DOUBLE" + "[]" * r.u8()
        flags, stem = r.u8(), r.str()
        index = (r.u64(), r.str()) if flags & 2 else None
        cols.append({"id": cid, "name": name, "type": t, "shown": shown, "scale": scale,
                     "not_null": bool(flags & 1), "stem": stem, "index": index})
    return seq, cols


def read_txn(path):
    r = framed(path, b"TMTXN001")
    txn, meta_seq = r.u64(), r.u64()
    sym_counts = {}
    for _ in range(r.u32()):
        c = r.u32()
        sym_counts[c] = r.u32()
    parts = []
    for _ in range(r.u32()):
        p = {"start": r.i64(), "version": r.u64(), "dir": r.str(), "read_only": r.bool(),
             "rows": r.u64(), "min_ts": r.i64(), "max_ts": r.i64(), "ext": {}}
        for _ in range(r.u32()):
            cid = r.u32()
            p["ext"][cid] = {"top": r.u64(), "var_len": r.u64(), "null_len": r.u64(),
                             "data_crc": r.u32(), "aux_crc": r.u32()}
        parts.append(p)
    return meta_seq, sym_counts, parts


def read_symbols(path, count):
    data = open(path, "rb").read()
    if data[:8] != b"TMSYM001" or crc32c(data[:12]) != struct.unpack("<I", data[12:16])[0]:
        sys.exit(f"{path}: bad header")
    pos, out = 16, []
    for _ in range(count):
        (n,) = struct.unpack("<I", data[pos:pos + 4])
        end = pos + 4 + n
        if crc32c(data[pos:end]) != struct.unpack("<I", data[end:end + 4])[0]:
            sys.exit(f"{path}: entry checksum mismatch")
        out.append(data[pos + 4:end].decode("utf-8"))
        pos = end + 4
    return out


def committed(path, length, crc):
    data = open(path, "rb").read()[:length] if length else b""
    if len(data) != length or crc32c(data) != crc:
        sys.exit(f"{path}: committed bytes do not match their checksum")
    return data


def check_index(pdir, col, ext, rows, keys):
    """The symbol index of an indexed SYMBOL column must list, per key, exactly
    the rows holding it: blocks cover rows top.. without gaps."""
    seq, _name = col["index"]
    path = os.path.join(pdir, f"{col['stem']}.{seq}.k")
    data = committed(path, ext["var_len"], ext["aux_crc"])
    pos, next_row, found = 0, ext["top"], {}
    while pos < len(data):
        first, n, nkeys = struct.unpack("<QII", data[pos:pos + 16])
        if first != next_row:
            sys.exit(f"{path}: a block starts at row {first}, not {next_row}")
        directory = pos + 16
        offsets = directory + 8 * nkeys
        start = 0
        for i in range(nkeys):
            key, end = struct.unpack("<iI", data[directory + 8 * i:directory + 8 * i + 8])
            for j in range(start, end):
                (off,) = struct.unpack("<I", data[offsets + 4 * j:offsets + 4 * j + 4])
                found[first + off] = key
            start = end
        next_row = first + n
        pos = offsets + 4 * n
    if next_row < rows:
        sys.exit(f"{path}: the index covers rows up to {next_row}, not {rows}")
    for row in range(ext["top"], rows):
        if found.get(row) != keys[row - ext["top"]]:
            sys.exit(f"{path}: row {row} has key {keys[row - ext['top']]}, the index says {found.get(row)}")


def decimal_text(unscaled, scale):
    digits = str(abs(unscaled)).rjust(scale + 1, "0")
    sign = "-" if unscaled < 0 else ""
    if scale == 0:
        return sign + digits
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def read_column(pdir, col, ext, rows, symbols):
    top, stored = ext["top"], rows - ext["top"]
    out = [None] * top
    t, stem = col["type"], col["stem"]
    if stored == 0:
        return out
    if t in ("VARCHAR", "BINARY", "JSON", "JSONB", "DOUBLE[]"):
        offs = committed(os.path.join(pdir, stem + ".i"), 8 * stored, ext["aux_crc"])
        data = committed(os.path.join(pdir, stem + ".d"), ext["var_len"], ext["data_crc"])
        start = 0
        for i in range(stored):
            (e,) = struct.unpack("<Q", offs[8 * i:8 * i + 8])
            end = e & ~(1 << 63)
            v = data[start:end]
            out.append(None if e >> 63 else (v.hex() if t in ("BINARY", "DOUBLE[]") else v.decode("utf-8")))
            start = end
        return out
    fmt, w = FIXED[t]
    data = committed(os.path.join(pdir, stem + ".d"), w * stored, ext["data_crc"])
    if col["index"]:
        check_index(pdir, col, ext, rows, [k for (k,) in struct.iter_unpack("<i", data)])
    nulls = b""
    if t in NULL_FILE_TYPES and not col["not_null"]:
        nulls = committed(os.path.join(pdir, stem + ".n"), ext["null_len"], ext["aux_crc"])
    for i in range(stored):
        raw = data[w * i:w * i + w]
        if i < len(nulls) and nulls[i] == 1:
            out.append(None)
        elif t == "UUID":
            out.append("%032x" % int.from_bytes(raw, "little"))
        elif t == "DECIMAL":
            out.append(decimal_text(int.from_bytes(raw, "little", signed=True), col["scale"]))
        else:
            (v,) = struct.unpack("<" + fmt, raw)
            if t == "BOOLEAN":
                v = None if v == 2 else v == 1
            elif t == "SYMBOL":
                v = None if v == -1 else symbols[v]
            elif t in ("REAL", "DOUBLE"):
                v = "%0*x" % (2 * w, int.from_bytes(raw, "little"))
            out.append(v)
    return out


def main(root):
    reg = framed(os.path.join(root, "db", "_tables"), b"TMTABLES")
    _seq, _next = reg.u64(), reg.u64()
    views = []
    for _ in range(reg.u32()):
        _tid, name, tdir, kind = reg.u64(), reg.str(), reg.str(), reg.u8()
        if kind == 2:
            definition, _vseq = reg.str(), reg.u64()
            views.append({"view": name, "definition": definition})
            continue
        base = os.path.join(root, "db", tdir)
        mseq, cols = read_meta(os.path.join(base, "_meta"))
        meta_seq, sym_counts, parts = read_txn(os.path.join(base, "_txn"))
        if mseq != meta_seq:
            sys.exit(f"{base}: _meta and _txn disagree")
        symbols = {c["id"]: read_symbols(os.path.join(base, c["stem"] + ".sym"), sym_counts.get(c["id"], 0))
                   for c in cols if c["type"] == "SYMBOL"}
        columns = [[] for _ in cols]
        for p in parts:
            pdir = os.path.join(base, p["dir"])
            for k, c in enumerate(cols):
                columns[k] += read_column(pdir, c, p["ext"][c["id"]], p["rows"], symbols.get(c["id"]))
        rows = [list(r) for r in zip(*columns)]
        out = {"table": name, "columns": [[c["name"], c["shown"]] for c in cols], "rows": rows}
        print(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
    for v in views:
        print(json.dumps(v, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main(sys.argv[1])
