"""A UDP echo server in Python's own sockets (RFC 862's datagram half): each
datagram back, whole, to its sender. No guard, no rate limit: a peer to test
clients against, not a server to expose.

    python3 udp_echo_server.py [HOST] [PORT]    # PORT 0 picks a free one
"""

import socket
import sys

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 12345

family = socket.AF_INET6 if ":" in host else socket.AF_INET
server_socket = socket.socket(family, socket.SOCK_DGRAM)
server_socket.bind((host, port))
print("Server listening on {}:{}".format(host, server_socket.getsockname()[1]), flush=True)

while True:
    # 65535 holds the largest datagram either family carries (65,507 / 65,527 bytes).
    data, source = server_socket.recvfrom(65535)
    try:
        server_socket.sendto(data, source)
    except OSError:
        pass
