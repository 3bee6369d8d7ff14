#!/bin/sh
# NeoOS writes to a real ext2 disk, e2fsprogs checks it (issue 12's oracle).
# Builds NeoOS (cargo run), makes a 1 KiB-block and a 4 KiB-block ext2 image with
# mke2fs -d, boots each with a virtio-blk disk and `disk-smoke=write` (the kernel
# writes /neoos-smoke, 300000 bytes, and makes /neoos-smoke-dir), then demands that
# `e2fsck -fn` is clean and `debugfs cat /neoos-smoke` returns the kernel's bytes.
set -eu
cd "$(dirname "$0")/.."
cargo run -q >/dev/null
kernel=target/neoos/kernel-target/x86_64-unknown-linux-gnu/release/neoos-kernel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
echo "made on the host" > "$work/src/greeting"
for bs in 1024 4096; do
    img="$work/img$bs"
    /usr/sbin/mke2fs -q -F -t ext2 -b "$bs" -d "$work/src" "$img" 8M
    timeout 60 qemu-system-x86_64 -kernel "$kernel" -append "disk-smoke=write" \
        -m 512M -cpu max,-la57 -smp 1 -no-reboot -display none \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial mon:stdio -monitor none \
        -drive "file=$img,if=none,id=d0,format=raw" -device virtio-blk-pci,drive=d0 \
        | grep -E 'virtio-blk|ext2' || true
    /usr/sbin/e2fsck -fn "$img" >/dev/null
    /usr/sbin/debugfs -R 'cat /neoos-smoke' "$img" 2>/dev/null | python3 -c '
import sys
data = sys.stdin.buffer.read()
expected = bytes(((i * 2654435761) % 2**32) >> 24 for i in range(300000))
sys.exit(0 if data == expected else "debugfs cat /neoos-smoke differs from what NeoOS wrote")'
    echo "block size $bs: e2fsck -fn clean, debugfs cat /neoos-smoke matches"
done
