#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made seed inputs of fuzz/corpus_http/ (see fuzz_http_head.c
for the encoding: two bytes that choose the piece sizes, then the bytes a
client sent): accepted heads of every shape, then one of each refused kind."""
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus_http')
os.makedirs(out, exist_ok=True)


def seed(head, a=0, b=0):
    """@head fed in pieces of a and b bytes in turn (0: all that is left)."""
    return bytes([a, b]) + head


H = b'Host: localhost:8080\r\n'
seeds = {}
# Accepted.
seeds['get_minimal'] = seed(b'GET / HTTP/1.1\r\n' + H + b'\r\n')
seeds['get_byte_at_a_time'] = seed(b'GET /obj HTTP/1.1\r\n' + H + b'\r\n', 1, 1)
seeds['get_http_1_0'] = seed(b'GET /obj HTTP/1.0\r\n\r\n')
seeds['get_http_1_0_keep_alive'] = seed(b'GET /obj HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 5, 9)
seeds['get_range_close'] = seed(b'GET /obj?v=1 HTTP/1.1\r\n' + H + b'Range: bytes=0-99\r\n'
                                b'Connection: close\r\nAccept: */*\r\n\r\n', 2, 5)
seeds['head'] = seed(b'HEAD /a.b-c_d HTTP/1.1\r\nhost: h\r\n\r\n')
seeds['delete'] = seed(b'DELETE /obj HTTP/1.1\r\n' + H + b'\r\n', 3, 200)
seeds['put_content_length_then_body'] = seed(b'PUT /obj HTTP/1.1\r\n' + H +
                                             b'Content-Length: 5\r\n\r\nhello', 7, 1)
seeds['put_chunked'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Transfer-Encoding: chunked\r\n\r\n'
                            b'5\r\nhello\r\n0\r\n\r\n')
seeds['put_expect_continue'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Expect: 100-continue\r\n'
                                    b'Content-Length: 1048576\r\n\r\n', 16, 2)
seeds['pipelined_gets'] = seed(b'GET /a HTTP/1.1\r\n' + H + b'\r\nGET /b HTTP/1.1\r\n' + H + b'\r\n', 40, 0)
seeds['empty_lines_first'] = seed(b'\r\n\r\nGET / HTTP/1.1\r\n' + H + b'\r\n')
seeds['options_star'] = seed(b'OPTIONS * HTTP/1.1\r\n' + H + b'\r\n')
seeds['absolute_form'] = seed(b'GET http://localhost:8080/obj HTTP/1.1\r\n' + H + b'\r\n')
seeds['obs_text_and_ows'] = seed(b'GET / HTTP/1.1\r\n' + H + b'X-Name:\t caf\xc3\xa9 \t\r\n\r\n', 1, 3)
seeds['upgrade'] = seed(b'GET / HTTP/1.1\r\n' + H + b'Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
seeds['empty_host'] = seed(b'GET / HTTP/1.1\r\nHost:\r\n\r\n')
seeds['url_too_long'] = seed(b'GET /' + b'u' * 1100 + b' HTTP/1.1\r\n' + H + b'\r\n', 100, 0)
# Refused.
seeds['no_host_1_1'] = seed(b'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n')
seeds['two_hosts'] = seed(b'GET / HTTP/1.1\r\n' + H + b'Host: other\r\n\r\n')
seeds['space_before_colon'] = seed(b'GET / HTTP/1.1\r\nHost : h\r\n\r\n')
seeds['empty_field_name'] = seed(b'GET / HTTP/1.1\r\n' + H + b': v\r\n\r\n')
seeds['cl_and_te'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Content-Length: 3\r\n'
                          b'Transfer-Encoding: chunked\r\n\r\n')
seeds['cl_differing'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Content-Length: 3\r\nContent-Length: 4\r\n\r\n')
seeds['cl_not_digits'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Content-Length: +3\r\n\r\n')
seeds['cl_overflow'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Content-Length: 18446744073709551616\r\n\r\n')
seeds['obs_fold'] = seed(b'GET / HTTP/1.1\r\n' + H + b'X-A: b\r\n c\r\n\r\n')
seeds['bare_cr'] = seed(b'GET / HTTP/1.1\r\n' + H + b'X-A: b\rc\r\n\r\n')
seeds['bare_lf'] = seed(b'GET / HTTP/1.1\n' + H + b'\n')
seeds['nul_in_target'] = seed(b'GET /a\0b HTTP/1.1\r\n' + H + b'\r\n')
seeds['nul_in_name'] = seed(b'GET / HTTP/1.1\r\n' + H + b'X-\0A: b\r\n\r\n')
seeds['nul_in_value'] = seed(b'GET / HTTP/1.1\r\n' + H + b'X-A: b\0c\r\n\r\n')
seeds['http_2_0'] = seed(b'GET / HTTP/2.0\r\n' + H + b'\r\n')
seeds['http_1_2_split'] = seed(b'GET / HTTP/1.2\r\n' + H + b'\r\n', 13, 1)
seeds['te_gzip_then_chunked'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Transfer-Encoding: gzip, chunked\r\n\r\n')
seeds['te_chunked_then_gzip'] = seed(b'PUT /obj HTTP/1.1\r\n' + H + b'Transfer-Encoding: chunked, gzip\r\n\r\n')
seeds['te_in_http_1_0'] = seed(b'PUT /obj HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n')
seeds['two_spaces'] = seed(b'GET  / HTTP/1.1\r\n' + H + b'\r\n')
seeds['rtsp_protocol'] = seed(b'GET / RTSP/1.0\r\n\r\n')
seeds['pri_preface'] = seed(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('%d seeds in %s' % (len(seeds), out))
