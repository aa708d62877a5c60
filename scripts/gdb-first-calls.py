"""Run inside gdb (`gdb -batch -x scripts/gdb-first-calls.py --args BINARY ARGS...`): records,
in order, each function of BINARY the process enters, and appends their symbol names to the
file named by $FIRST_CALLS. One temporary breakpoint per function, so each costs one stop.
Forked children are detached: only the process started is traced."""
import os
import subprocess

import gdb

binary = gdb.current_progspace().filename
functions = {}
nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True)
for line in nm.stdout.splitlines():
    fields = line.split()
    if len(fields) == 3 and fields[1] in "tTwW":
        functions.setdefault(int(fields[0], 16), fields[2])

for setting in ("pagination off", "confirm off", "follow-fork-mode parent", "detach-on-fork on"):
    gdb.execute("set " + setting)
gdb.execute("starti", to_string=True)


def load_base():
    """Where the PIE was loaded: its first mapping's start minus that mapping's file offset."""
    for line in gdb.execute("info proc mappings", to_string=True).splitlines():
        fields = line.split()
        if fields and fields[-1] == binary and fields[0].startswith("0x"):
            return int(fields[0], 16) - int(fields[3], 16)
    raise gdb.GdbError(f"{binary} is not mapped")


base = load_base()
names = {}
for address, name in functions.items():
    bp = gdb.Breakpoint(f"*{base + address:#x}", internal=True, temporary=True)
    bp.silent = True
    names[bp.number] = name

entered = []


def on_stop(event):
    if isinstance(event, gdb.BreakpointEvent):
        entered.extend(names[bp.number] for bp in event.breakpoints if bp.number in names)


gdb.events.stop.connect(on_stop)
while gdb.selected_inferior().pid:
    try:
        gdb.execute("continue", to_string=True)
    except gdb.error:
        break

with open(os.environ["FIRST_CALLS"], "a") as out:
    out.writelines(name + "\n" for name in entered)
