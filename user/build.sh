#!/bin/sh
# build.sh - compile every NeoOS user program with the host gcc, exactly as the
# host tool does (see libneo/build.txt). Usage:
#     user/build.sh [OUTDIR]          (default OUTDIR: /tmp/neoos-user)
# Each program P.c becomes OUTDIR/<group>/P (group: programs, tests, helpers).
# Exits non-zero if any program fails to compile (warnings are errors).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/neoos-user}
lib=$here/libneo
CC=${CC:-gcc}
CFLAGS="-ffreestanding -nostdlib -static -fno-pie -no-pie -fno-stack-protector -fno-builtin \
 -O2 -g -std=gnu17 -Wall -Wextra -Werror -Wno-main -Wno-unused-parameter \
 -I $lib/include -Wl,-Ttext-segment=0x400000 -Wl,-z,max-page-size=0x1000"
LIBSRC="$lib/src/crt0.S $lib/src/syscalls.c $lib/src/neo.c"
fail=0
build() { # group file
    name=$(basename "$2" .c)
    mkdir -p "$out/$1" "$out/wrap"
    wrap=$out/wrap/$1-$name.c
    printf '#include "%s"\n#include "%s"\n' "$2" "$lib/src/main_trailer.h" > "$wrap"
    if ! $CC $CFLAGS -o "$out/$1/$name" $LIBSRC "$wrap"; then
        echo "FAILED: $2" >&2
        fail=1
    fi
}
for f in "$here"/programs/*.c; do [ -e "$f" ] && build programs "$f"; done
for f in "$here"/tests/*.c; do [ -e "$f" ] && build tests "$f"; done
for f in "$here"/tests/helpers/*.c; do [ -e "$f" ] && build helpers "$f"; done
exit $fail
