"""The other side of a SCRAM exchange, played by Python's scramp (an independent
implementation), for tests/scramp_interop.rs. Messages travel as base64 lines on
stdin/stdout. scramp 1.5 knows tls-server-end-point but not tls-exporter.

usage: scramp_peer.py server|client MECHANISM USER PASSWORD CERT_HEX bind|none
The binding data is scramp's own tls-server-end-point hash of the certificate (CERT_HEX,
DER), so our hash of RFC 5929 is checked too. The client prints OK or ERR <reason> last.
"""
import base64
import sys

from scramp import ScramClient, ScramMechanism
from scramp.core import CBindData
from scramp.utils import ScramException


def send(text):
    print(base64.b64encode(text.encode()).decode(), flush=True)


def recv():
    return base64.b64decode(sys.stdin.readline().strip()).decode()


def main():
    mode, mech, user, password, cert_hex, cb_mode = sys.argv[1:7]
    data = CBindData.from_der(bytes.fromhex(cert_hex)).data
    cb = ("tls-server-end-point", data) if cb_mode == "bind" else None
    if mode == "server":
        m = ScramMechanism(mech)
        info = m.make_auth_info(password, iteration_count=4096)

        def auth_fn(name):
            if name != user:
                raise ScramException("unknown user")
            return info

        s = m.make_server(auth_fn, channel_binding=cb)
        try:
            s.set_client_first(recv())
        except ScramException as e:
            send("e=" + (e.server_error.value if e.server_error else "other-error"))
            return
        send(s.get_server_first())
        try:
            s.set_client_final(recv())
        except ScramException:
            pass
        send(s.get_server_final())
    else:
        c = ScramClient([mech], user, password, channel_binding=cb)
        send(c.get_client_first())
        c.set_server_first(recv())
        send(c.get_client_final())
        try:
            c.set_server_final(recv())
            print("OK", flush=True)
        except ScramException as e:
            print("ERR", e, flush=True)


main()
