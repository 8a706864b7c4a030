#!/usr/bin/env python3
"""A straightforward KABI checker, the reference `scripts/bench/kabi-e2e`
times certlab against: read Module.symvers, read every kernel module's
`__versions` table with the ELF parsing below (standard library only), and
compare each recorded CRC with the kernel's.

    kabi_check_ref.py MODULE.SYMVERS DIR_OR_KO...

Prints one JSON object: per module its problems (`missing` symbol, `crc`
mismatch), and a summary. Exit 0 when every module is compatible, 1 when
one is not, 3 on a file it cannot parse. Uncompressed `.ko` only.
"""

import json
import os
import struct
import sys


def read_symvers(path):
    """{symbol: crc} from Module.symvers (`0xCRC<TAB>symbol<TAB>module...`)."""
    crcs = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                raise ValueError(f"{path}: line {n}: expected at least 3 tab-separated fields")
            crcs[fields[1]] = int(fields[0], 16)
    return crcs


def versions(path):
    """The (symbol, crc) records of a module's `__versions` section, or None
    when it has none."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path}: not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)

    def section(i):
        at = shoff + i * shentsize
        if is64:
            name, _type, _flags, _addr, off, size = struct.unpack_from(end + "IIQQQQ", data, at)
        else:
            name, _type, _flags, _addr, off, size = struct.unpack_from(end + "IIIIII", data, at)
        return name, off, size

    _, stroff, strsize = section(shstrndx)
    names = data[stroff:stroff + strsize]
    for i in range(shnum):
        name, off, size = section(i)
        if names[name:names.index(b"\0", name)] == b"__versions":
            word = 8 if is64 else 4
            fmt = end + ("Q" if is64 else "I")
            out = []
            for rec in range(off, off + size, 64):
                crc, = struct.unpack_from(fmt, data, rec)
                raw = data[rec + word:rec + 64]
                out.append((raw[:raw.index(b"\0")].decode("utf-8", "replace"), crc))
            return out
    return None


def modules(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in os.walk(p):
                for name in files:
                    if name.endswith(".ko"):
                        yield os.path.join(root, name)
        else:
            yield p


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        kernel = read_symvers(argv[1])
        reports = []
        for path in sorted(modules(argv[2:])):
            problems = []
            for sym, crc in versions(path) or []:
                want = kernel.get(sym)
                if want is None:
                    problems.append({"kind": "missing", "symbol": sym})
                elif want != crc & 0xFFFFFFFF:
                    problems.append({"kind": "crc", "symbol": sym,
                                     "expected": f"0x{want:08x}", "found": f"0x{crc:08x}"})
            reports.append({"path": path, "compatible": not problems, "problems": problems})
    except (ValueError, struct.error) as e:
        print(f"kabi_check_ref: {e}", file=sys.stderr)
        return 3
    bad = sum(1 for r in reports if not r["compatible"])
    json.dump({"modules": reports,
               "summary": {"checks": len(reports), "compatible": len(reports) - bad,
                           "incompatible": bad}}, sys.stdout, indent=2)
    print()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
