"""Collects the sanitizer reports of a scripts/sanitize.sh run and prints each distinct one once.

    python scripts/sanitize_reports.py [--frames N] FILE...

FILEs are the run's logs (UBSan writes its reports to stderr, which the logs hold) and ASan's log_path files
(<tag>.san.<pid>). A report runs from its headline (ASan's "ERROR: ..." or "...DEADLYSIGNAL", UBSan's
"file:line:col: runtime error: ...") to its SUMMARY line (UBSan's, to the end of its stack). ASan reports with
the same SUMMARY (kind and first frame's file:line), and UBSan reports of the same kind at the same file:line:col,
are one; each is printed with its headline, its first N frames, where the memory came from (ASan), and
the files it was seen in. Exit status: 1 if there is any report, else 0.
"""

import argparse
import os
import re
import sys

HEADLINE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|AddressSanitizer:DEADLYSIGNAL|: runtime error: ")
SUMMARY = re.compile(r"^SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)")
FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ ")
PID = re.compile(r"^==\d+==\s*")


def reports(path):
    """The reports in one file, each a list of lines."""
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    current = None
    for line in lines:
        if line.startswith("DEFECT ["):
            continue  # fuzz.py's one-line account of a crash, with the last lines of the child's stderr
        if HEADLINE.search(line) and not (current and "DEADLYSIGNAL" in current[-1]):
            if current:
                yield current  # a report cut short (the process died while writing): keep what there is
            # pytest -v writes a test's name before running it: the report follows on the same line.
            m = HEADLINE.search(line)
            start = line.rfind(" ", 0, m.start()) + 1 if "runtime error" in m.group(0) else line.find("==")
            current = [line[max(start, 0):]]
        elif current is not None:
            if "runtime error" in current[0] and any(FRAME.match(l) for l in current) and not FRAME.match(line):
                yield current  # UBSan's report (next to ASan it prints no SUMMARY) ends with its stack
                current = None
                continue
            current.append(line)
            if SUMMARY.match(line):
                yield current
                current = None
    if current:
        yield current


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("files", nargs="*")
    a = p.parse_args()

    distinct = {}  # key -> [report lines, [where seen]]
    for path in a.files:
        for rep in reports(path):
            summary = next((l for l in rep if SUMMARY.match(l)), None)
            ub = re.match(r"(.*?:\d+:\d+): runtime error: ([^:0-9]*)", rep[0])
            if ub:  # one per source location and kind, whatever the values
                key = f"UBSan: {ub.group(2).strip()} at {ub.group(1)}"
            else:
                key = re.sub(r"0x[0-9a-f]+", "0x...", summary or PID.sub("", rep[0]))
            where = os.path.basename(path)
            where = re.sub(r"\.san\.\d+$", "", where).removesuffix(".log")
            if key in distinct:
                distinct[key][1].append(where)
            else:
                distinct[key] = [rep, [where]]

    total = sum(len(w) for _, w in distinct.values())
    print(f"{total} report(s), {len(distinct)} distinct")
    for i, (key, (rep, where)) in enumerate(distinct.items(), 1):
        print()
        seen = sorted(set(where), key=where.index)
        counts = ", ".join(f"{w} x{where.count(w)}" if where.count(w) > 1 else w for w in seen)
        print(f"[{i}] seen in: {counts}")
        body = [PID.sub("", l) for l in rep]
        head = [l for l in body[:4] if HEADLINE.search(l) or re.match(r"(READ|WRITE) of size|The signal is", l)]
        for l in head[:2]:
            print("    " + l.strip())
        frames = [l.strip() for l in body if FRAME.match(l)]
        # The first stack only (an ASan report's later stacks are the allocation's and the free's).
        first = []
        for l in frames:
            if first and l.startswith("#0 "):
                break
            first.append(l)
        for l in first[: a.frames]:
            print("      " + l)
        if len(first) > a.frames:
            print(f"      ... {len(first) - a.frames} more frames")
        for l in body:
            if re.search(r"is located|allocated by thread|freed by thread", l):
                print("    " + l.strip())
                break
        print("    " + key)
    return 1 if distinct else 0


if __name__ == "__main__":
    sys.exit(main())
