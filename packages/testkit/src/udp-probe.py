"""An outside UDP client for a UDP echo server: what our packages must pass, checked
with Python's own sockets (no code of ours). Prints one JSON object and exits 0;
the test asserts on it.

    python3 udp-probe.py HOST PORT [--burst N]

- sizes: 1, 1472, 8192 and 65507 random bytes, each must come back byte-exact,
  as one datagram, from the server's address (retried twice on a timeout: loss is
  normal on UDP);
- source port 1023: a datagram from it must get no answer (needs root to bind);
- burst: N datagrams of random sizes from one source (127.0.0.1), then another
  source (127.0.0.2) must still be answered; replies the flooder got are counted;
- empty: a 0-byte datagram must be answered with a 0-byte datagram. Last, because
  it wedges socat's forking UDP echo for every source after it.
"""

import json
import os
import random
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
burst = int(sys.argv[sys.argv.index("--burst") + 1]) if "--burst" in sys.argv else 0
server = (host, port)
report = {}


def udp(bind_host="127.0.0.1", bind_port=0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind_host, bind_port))
    return sock


def echo(sock, payload, timeout=1.0, attempts=3):
    """The answer to `payload` (None if none came), and whether it came from the server."""
    sock.settimeout(timeout)
    for _ in range(attempts):
        sock.sendto(payload, server)
        try:
            data, source = sock.recvfrom(70000)
            return data, source == server
        except socket.timeout:
            continue
    return None, False


client = udp()
sizes = {}
for size in (1, 1472, 8192, 65507):
    payload = os.urandom(size)
    data, from_server = echo(client, payload)
    sizes[str(size)] = {
        "answered": data is not None,
        "exact": data == payload,
        "length": None if data is None else len(data),
        "fromServer": from_server,
    }
report["sizes"] = sizes

try:
    privileged = udp(bind_port=1023)
    data, _ = echo(privileged, b"from port 1023", timeout=0.5, attempts=1)
    report["port1023"] = {"bound": True, "answered": data is not None}
    privileged.close()
except PermissionError as error:
    report["port1023"] = {"bound": False, "error": str(error)}

if burst:
    flooder = udp()
    flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    rng = random.Random(862)
    started = time.monotonic()
    sent = 0
    for i in range(burst):
        size = 65507 if i % 500 == 0 else rng.randrange(0, 2049)
        try:
            flooder.sendto(rng.randbytes(size), server)
            sent += 1
        except BlockingIOError:
            pass
    other = udp(bind_host="127.0.0.2")
    answered = 0
    for i in range(5):
        payload = b"other source %d" % i
        data, from_server = echo(other, payload)
        answered += int(data == payload and from_server)
    elapsed = time.monotonic() - started
    flooder.setblocking(False)
    replies = 0
    while True:
        try:
            flooder.recvfrom(70000)
            replies += 1
        except BlockingIOError:
            break
    report["burst"] = {
        "sent": sent,
        "seconds": round(elapsed, 3),
        "flooderReplies": replies,
        "otherAnswered": answered,
    }

data, from_server = echo(client, b"")
report["empty"] = {"answered": data is not None, "exact": data == b"", "fromServer": from_server}

print(json.dumps(report))
