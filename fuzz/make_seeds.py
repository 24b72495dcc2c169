#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made seed inputs of fuzz/corpus/ (see fuzz_ops.c for the
encoding: per step an opcode byte, a byte of list numbers, then arguments)."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
os.makedirs(out, exist_ok=True)


def L(n):
    """A length as len_of() reads it."""
    if n < 64:
        return bytes([n])
    if n < 65536:
        return bytes([0x80]) + struct.pack('<H', n)
    return bytes([0xc0]) + struct.pack('<I', n)


def op(code, i=0, j=0, defer=False, opt=False):
    return bytes([code | (0x80 if defer else 0) | (0x40 if opt else 0), (i & 3) | ((j & 3) << 2)])


def u32(v):
    return struct.pack('<I', v)


APPEND, ZERO, REF, LIST, CLAIM, FILE, SUBSTR, SPLICE, COPY, ITER, CSTR, REBUILD, \
    ALIGNED, CRC, CMP, SPLICE_FROM, _, SPLICE_TO, _, CLEAR, FREE, BAD, COMPARE, TRUNC, \
    HEXDUMP, SPLICE_TO_BLOCKING = range(26)

seeds = {}
seeds['appends'] = op(APPEND) + L(5000) + u32(1) + op(ZERO) + L(70000) + \
    op(REF) + u32(100) + L(3000) + op(COMPARE)
seeds['append_file'] = op(FILE, 1) + u32(1000) + L(200000) + op(COPY, 1) + u32(10) + L(5000) + \
    op(CRC, 1) + u32(0xffffffff)
# splice_from: bits 0-1 pipe/socket/file, bit 2 read_fd, bit 3 non-blocking source.
for k in range(16):
    seeds['splice_from_k%d' % k] = \
        op(SPLICE_FROM, 0, defer=True) + bytes([k]) + L(40000) + u32(k) + L(9000) + \
        op(SPLICE_FROM, 0, defer=True) + bytes([k]) + L(20000) + u32(k + 1) + L(20000) + op(COMPARE)
# splice_to: bits 0-1 pipe/socket/file/write_fd, bit 2 drain, bit 3 offset; from kernel pages
# shared with another list, compared only afterwards.
for k in range(16):
    seeds['splice_to_k%d' % k] = \
        op(SPLICE_FROM, 1, defer=True) + bytes([k & 3 if (k & 3) < 2 else 2]) + L(30000) + u32(9) + \
        L(30000) + op(APPEND, 1, defer=True) + L(100) + u32(3) + op(LIST, 2, 1, defer=True) + \
        op(SPLICE_TO, 1, defer=True) + bytes([k]) + op(COMPARE, 1) + op(COMPARE, 2)
seeds['share_drain'] = \
    op(SPLICE_FROM, 0, defer=True) + bytes([1]) + L(50000) + u32(5) + L(50000) + \
    op(SUBSTR, 1, 0, defer=True) + u32(100) + L(20000) + op(SPLICE_TO, 0, defer=True) + bytes([4]) + \
    op(FREE, 0) + op(SPLICE_TO, 1, defer=True) + bytes([5])
seeds['slicing'] = op(APPEND) + L(20000) + u32(3) + op(REF) + u32(5) + L(100) + \
    op(SPLICE, 0, 1) + u32(50) + L(10000) + op(SPLICE, 0, 1, opt=True) + u32(10) + L(100) + \
    op(SUBSTR, 2, 0) + u32(3) + L(900) + op(CLAIM, 3, 2) + op(LIST, 3, 3)
seeds['rebuild'] = op(APPEND) + L(100) + u32(1) + op(REF) + u32(7) + L(5000) + \
    op(FILE) + u32(0) + L(9000) + op(ALIGNED) + bytes([12]) + op(REBUILD) + op(CSTR)
seeds['iter_cmp'] = op(APPEND) + L(3000) + u32(1) + op(LIST, 1, 0) + op(CMP, 0, 1) + \
    op(ITER) + u32(7) + bytes([0]) + L(100) + bytes([1]) + L(200) + bytes([2]) + L(10) + \
    bytes([0]) + L(5000) + op(CMP, 1, 2)
seeds['bad_args'] = op(BAD) + op(APPEND, 1) + L(10) + u32(1) + op(BAD, 1) + \
    op(FILE, 2) + u32(600000) + L(10)
seeds['big_file_materialize'] = op(FILE, defer=True) + u32(0) + L(300000) + op(CRC) + u32(0) + \
    op(SPLICE_TO) + bytes([0])
seeds['truncated_shared'] = op(FILE, 0, defer=True) + u32(1000) + L(300000) + \
    op(APPEND, 0, defer=True) + bytes([10]) + u32(1) + op(LIST, 1, 0, defer=True) + \
    op(TRUNC, 0, 1, defer=True) + u32(5000) + op(COMPARE, 0) + op(COMPARE, 1)
seeds['truncated_unaffected'] = op(FILE, 2, defer=True) + u32(0) + L(100000) + \
    op(TRUNC, 2, 2, defer=True) + u32(200000) + op(TRUNC, 2, 3) + u32(10)
seeds['file_pages_in_pipe'] = op(SPLICE_FROM, 0, defer=True) + bytes([2]) + u32(4096) + \
    L(200000) + L(200000) + op(TRUNC, 0, 0, defer=True) + u32(0) + op(COMPARE)
# hexdump of memory, zeros (folded rows), socket pages and file pages, untouched before; then
# into /dev/full (opt), and of an empty list.
seeds['hexdump'] = op(APPEND, 0, defer=True) + L(21) + u32(4) + op(ZERO, 0, defer=True) + L(100) + \
    op(SPLICE_FROM, 0, defer=True) + bytes([1]) + L(3000) + u32(6) + L(3000) + \
    op(FILE, 0, defer=True) + u32(77) + L(40000) + op(HEXDUMP, 0, defer=True) + \
    op(HEXDUMP, 0, opt=True) + op(HEXDUMP, 1) + op(HEXDUMP, 1, opt=True)
seeds['hexdump_big_pipe'] = op(SPLICE_FROM, 2, defer=True) + bytes([2]) + u32(0) + L(200000) + \
    L(200000) + op(HEXDUMP, 2, defer=True) + op(COMPARE, 2)
# Blocking destinations drained by a thread: bit 0 socket, bit 1 write_fd, bit 2 drain, bit 3 a
# small destination; from socket pages and file pages shared with another list, and memory.
for k in range(16):
    seeds['splice_to_blocking_k%d' % k] = \
        op(SPLICE_FROM, 1, defer=True) + bytes([1]) + L(90000) + u32(k) + L(90000) + \
        op(APPEND, 1, defer=True) + L(5000) + u32(3) + \
        op(SPLICE_FROM, 1, defer=True) + bytes([2]) + u32(8192) + L(150000) + L(150000) + \
        op(SUBSTR, 2, 1, defer=True) + u32(1000) + L(100000) + \
        op(SPLICE_TO_BLOCKING, 1, defer=True) + bytes([k]) + op(COMPARE, 1) + op(COMPARE, 2)

# Ring operations (opcodes 52-54): the same write or read through an io_uring ring, a
# ZBL_RING_SYNC ring and the synchronous functions. The written list mixes socket pages,
# memory, borrowed memory, a file range and file pages, untouched before the write.
RING_WRITE, RING_READ, RING_SPLICE = 52, 53, 54
mixed = op(SPLICE_FROM, 1, defer=True) + bytes([1]) + L(30000) + u32(7) + L(30000) + \
    op(APPEND, 1, defer=True) + L(5000) + u32(3) + op(REF, 1, defer=True) + u32(100) + L(20000) + \
    op(FILE, 1, defer=True) + u32(1000) + L(70000) + \
    op(SPLICE_FROM, 1, defer=True) + bytes([2]) + u32(4096) + L(40000) + L(40000)
# Kind bits: 0-1 pipe/unix/file/tcp, 2 drain, 3 non-blocking, 4-5 which runner owns the
# list, 6 free the copy at once, 7 a file offset (u32) follows.
for d in range(4):
    for owner in range(3):
        for drain in range(2):
            kind = d | drain << 2 | ((d + owner) & 1) << 3 | owner << 4 | (owner == 1) << 6
            extra = b''
            if d == 2 and not drain:
                kind |= 0x80
                extra = u32(4096 * owner + 1000)
            seeds['ring_write_d%d_o%d%s' % (d, owner, '_drain' if drain else '')] = \
                mixed + op(RING_WRITE, 1, defer=True) + bytes([kind]) + extra + \
                op(COMPARE, 1) + op(RING_WRITE, 1) + bytes([d | owner << 4])
# Reads: streams get L(bytes) L(length - 1) u32(seed), files u32(offset) L(length - 1).
for d in range(4):
    for owner in range(3):
        for code in (RING_READ, RING_SPLICE):
            kind = d | owner << 4 | (owner & 1) << 3
            args = u32(1000 + owner) + L(30000) if d == 2 else L(20000 + owner) + L(65536) + u32(owner)
            seeds['ring_%s_d%d_o%d' % ('read' if code == RING_READ else 'splice', d, owner)] = \
                op(APPEND, 2, defer=True) + L(100) + u32(9) + \
                op(code, 2, defer=True) + bytes([kind]) + args + \
                op(code, 2, defer=True) + bytes([kind]) + args + op(COMPARE, 2)

for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('%d seeds in %s' % (len(seeds), out))
