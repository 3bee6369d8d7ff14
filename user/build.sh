#!/bin/sh
# build.sh - compile every NeoOS program of the repository with the host gcc,
# as the host tool does (see libneo/build.txt): the flags of libneo/cflags,
# plus -Werror as for all of the repository's own programs. Usage:
#     user/build.sh [OUTDIR]          (default OUTDIR: /tmp/neoos-user)
# Each program P.c becomes OUTDIR/<group>/P (group: programs, tests, helpers).
# Exits non-zero if any program fails to compile (warnings are errors).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/neoos-user}
lib=$here/libneo
CC=${CC:-gcc}
CFLAGS="$(grep -v '^#' "$lib/cflags" | tr '\n' ' ') -Werror -I $lib/include"
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
