"""Splits a program-counter trace (from step.py) into kernel entries (runs of
kernel addresses between user instructions) and prints, for each, its
instruction count and the functions the instructions were in.

    python3 tools/profile/histogram.py TRACE KERNEL_ELF USER_ELF [TOP]"""
import bisect
import collections
import subprocess
import sys

KERNEL_HALF = 0xFFFF800000000000


def symbols(path):
    """(address, name) of every function symbol of an ELF file, sorted."""
    out = subprocess.run(["nm", "-n", "-C", path], capture_output=True, text=True).stdout
    table = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            table.append((int(parts[0], 16), parts[2]))
    return table


def namer(table):
    starts = [a for a, _ in table]

    def name(pc):
        i = bisect.bisect_right(starts, pc) - 1
        return table[i][1] if i >= 0 else "?"

    return name


def main():
    trace, kernel, user = sys.argv[1:4]
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    kname, uname = namer(symbols(kernel)), namer(symbols(user))
    pcs = [int(line, 16) for line in open(trace)]
    entries, current = [], None
    for pc in pcs:
        if pc >= KERNEL_HALF:
            current = current if current is not None else []
            current.append(pc)
        elif current is not None:
            entries.append(current)
            current = None
    for i, entry in enumerate(entries):
        print("== kernel entry %d: %d instructions" % (i, len(entry)))
        counts = collections.Counter(kname(pc) for pc in entry)
        for name, n in counts.most_common(top):
            print("%6d  %s" % (n, name[:140]))
    user_pcs = [pc for pc in pcs if pc < KERNEL_HALF]
    print("user instructions: %d (%s ...)" % (len(user_pcs), uname(user_pcs[0]) if user_pcs else "-"))


if __name__ == "__main__":
    main()
