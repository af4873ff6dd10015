"""The tutorial's echo server, corrected: one thread per client (the tutorial
serves one client at a time, so a second client waits for the first), sendall,
read until EOF, then close only after everything was echoed (half-close aware).

    python3 echo_server.py [HOST] [PORT]    # PORT 0 picks a free one
"""

import socket
import sys
import threading

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 12345

# AF_INET6 for an IPv6 address such as ::1 (the tutorial only knows AF_INET).
family = socket.AF_INET6 if ":" in host else socket.AF_INET
server_socket = socket.socket(family, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind((host, port))
# The tutorial's backlog of 5 drops connections when many clients arrive at once.
server_socket.listen(1024)

print("Server listening on {}:{}".format(host, server_socket.getsockname()[1]), flush=True)


def serve(client_socket, client_address):
    with client_socket:
        try:
            while True:
                data = client_socket.recv(65536)
                if not data:
                    break
                # send() may write only part of data; sendall() loops until all of it is written.
                client_socket.sendall(data)
        except OSError:
            # A client that resets is routine: drop it and keep serving the others.
            pass


while True:
    client_socket, client_address = server_socket.accept()
    print("New connection from {}:{}".format(client_address[0], client_address[1]), flush=True)
    threading.Thread(target=serve, args=(client_socket, client_address), daemon=True).start()
