"""gdb script: from a breakpoint at user address $MARK, single-steps $STEPS
instructions of a NeoOS guest (QEMU started by `cargo run -- --gdb ...`) and
writes each program counter, one hex number a line, to $OUT.

    MARK=0x4010c0 STEPS=8000 OUT=/tmp/trace.txt gdb -batch -nx -x tools/profile/step.py

QEMU's gdb stub keeps interrupts off while stepping, so the trace is the path
of the code under study alone."""
import os

import gdb

steps = int(os.environ.get("STEPS", "8000"))
gdb.execute("set pagination off")
gdb.execute("target remote :1234")
gdb.execute("hbreak *" + os.environ["MARK"])
gdb.execute("continue")
gdb.execute("delete")
with open(os.environ.get("OUT", "/tmp/trace.txt"), "w") as out:
    for _ in range(steps):
        pc = int(gdb.parse_and_eval("$pc")) & 0xFFFFFFFFFFFFFFFF
        out.write("%x\n" % pc)
        gdb.execute("stepi", to_string=True)
gdb.execute("kill")
