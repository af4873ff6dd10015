"""The tutorial's echo client, corrected: sendall, half-close, then read until EOF
(the tutorial reads once, 1024 bytes at most, and misses the rest of a longer echo).

    python3 echo_client.py HOST PORT MESSAGE   # the tutorial exchange
    python3 echo_client.py HOST PORT           # stdin to the server, its echo to stdout
"""

import socket
import sys
import threading

server_host = sys.argv[1]
server_port = int(sys.argv[2])

# create_connection rather than the tutorial's AF_INET socket: it also reaches ::1.
client_socket = socket.create_connection((server_host, server_port))


def send_all_then_half_close(source):
    for data in source:
        client_socket.sendall(data)
    # FIN: tells the server we are done sending; its echo keeps coming.
    client_socket.shutdown(socket.SHUT_WR)


def stdin_chunks():
    while True:
        data = sys.stdin.buffer.read1(65536)
        if not data:
            return
        yield data


if len(sys.argv) > 3:
    message = " ".join(sys.argv[3:])
    sender = threading.Thread(target=send_all_then_half_close, args=([message.encode("utf-8")],))
else:
    message = None
    sender = threading.Thread(target=send_all_then_half_close, args=(stdin_chunks(),))
# Send and receive at once: a client that sends everything before reading
# deadlocks against any server with backpressure once the echo fills the buffers.
sender.start()

response = bytearray()
while True:
    data = client_socket.recv(65536)
    if not data:
        break
    if message is None:
        sys.stdout.buffer.write(data)
    else:
        response += data
sender.join()
client_socket.close()

if message is None:
    sys.stdout.buffer.flush()
else:
    print("Received response from server: {}".format(response.decode("utf-8")))
