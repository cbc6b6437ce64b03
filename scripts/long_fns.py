#!/usr/bin/env python3
"""Lists Rust functions longer than a limit (default 100 lines), longest first.

Usage: scripts/long_fns.py [--max N] [paths...]   (default: src)
Exits 1 when any function is over the limit, so it can gate `make lint` later.
A function's length is counted from its `fn` line to its closing brace, comments,
doc comments of nested items and blank lines included (what a reader scrolls through).
"""
import re
import sys
from pathlib import Path

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def blank_literals(text):
    """The text with comments, strings and char literals replaced by spaces (newlines kept),
    so that braces inside them do not count."""
    out, i, n = [], 0, len(text)
    keep = lambda s: re.sub(r"[^\n]", " ", s)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(keep(text[i:j])); i = j
        elif text.startswith("/*", i):
            depth, j = 0, i
            while j < n:
                if text.startswith("/*", j): depth += 1; j += 2
                elif text.startswith("*/", j):
                    depth -= 1; j += 2
                    if depth == 0: break
                else: j += 1
            out.append(keep(text[i:j])); i = j
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i-1].isalnum() or text[i-1] == "_")):
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            out.append(keep(text[i:j])); i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(keep(text[i:j + 1])); i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            out.append(keep(m.group(0))); i += m.end()
        else:
            out.append(c); i += 1
    return "".join(out)


def functions(path):
    text = blank_literals(path.read_text())
    for m in FN.finditer(text):
        # the body opens at the first `{` before any `;` (a trait method without body)
        j = m.end()
        depth_paren = 0
        while j < len(text):
            ch = text[j]
            if ch in "(<[": depth_paren += 1
            elif ch in ")>]": depth_paren -= 1
            elif ch == ";" and depth_paren <= 0: j = -1; break
            elif ch == "{" and depth_paren <= 0: break
            j += 1
        if j < 0 or j >= len(text):
            continue
        depth, k = 0, j
        while k < len(text):
            if text[k] == "{": depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0: break
            k += 1
        start = text.count("\n", 0, m.start()) + 1
        end = text.count("\n", 0, k) + 1
        yield m.group(1), start, end - start + 1


def main(argv):
    limit = 100
    if argv[:1] == ["--max"]:
        limit, argv = int(argv[1]), argv[2:]
    roots = [Path(a) for a in argv] or [Path("src")]
    files = [p for r in roots for p in (sorted(r.rglob("*.rs")) if r.is_dir() else [r])]
    long = [(n, str(p), s, name) for p in files for name, s, n in functions(p) if n > limit]
    for n, p, s, name in sorted(long, reverse=True):
        print(f"{n:5} {p}:{s} {name}")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
