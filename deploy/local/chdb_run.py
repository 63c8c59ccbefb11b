#!/usr/bin/env python3
"""Execute a .sql file on chdb (ClickHouse in-process) and print each statement's result.

Usage: chdb_run.py [--format FMT] FILE.sql [FILE.sql ...]   ('-' reads standard input)

Statements are separated by ';' at the end of a line (string literals and comments are respected).
All files run in ONE fresh session with a temporary data directory, so a schema file followed
by a query file works. Exit status 1 names the failing statement and ClickHouse's error.
"""
import sys
import tempfile

from chdb import session as chs


def split_statements(sql):
    out, buf, i, n = [], [], 0, len(sql)
    quote = None
    while i < n:
        c = sql[i]
        if quote:
            buf.append(c)
            if c == "\\" and i + 1 < n:
                buf.append(sql[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in ("'", '"', "`"):
            quote = c
            buf.append(c)
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        elif c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(c)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


def main(argv):
    fmt = "TSVWithNames"
    if len(argv) >= 2 and argv[0] == "--format":
        fmt, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mxtrail-chdb-") as tmp:
        sess = chs.Session(tmp)
        for path in argv:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
            for k, stmt in enumerate(split_statements(text), 1):
                try:
                    res = sess.query(stmt, fmt)
                except Exception as e:  # chdb raises on any server error
                    print(f"chdb_run: {path}: statement {k} failed: {e}\n--- statement ---\n{stmt}", file=sys.stderr)
                    return 1
                data = res.data() if hasattr(res, "data") else str(res)
                if data:
                    sys.stdout.write(data if data.endswith("\n") else data + "\n")
        sess.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
