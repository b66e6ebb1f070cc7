#!/usr/bin/env python3
"""Judges a TLS server by TeamChat's relay policy. Used by scripts/tls-scan.sh.

  tls-check.py scan FILE.xml      judge an sslscan --xml report
  tls-check.py compression HOST:PORT
                                  offer DEFLATE in a raw TLS 1.2 ClientHello and
                                  read the compression method the server picks
  tls-check.py deflate-server     a deliberately weak stub that picks DEFLATE
                                  (the control for the probe above); prints
                                  its address, serves one connection, exits

The policy: only TLS 1.2 and 1.3; in TLS 1.2 only ECDHE key exchange with
AEAD ciphers (GCM, CHACHA20-POLY1305, CCM); no compression; no
renegotiation at all (stricter than "no insecure renegotiation": the relay
turns it off). Every finding is printed; the exit status is 1 if there is
any, 2 if the input says nothing checkable (a scan of nothing never passes).

Standard library only. The compression probe exists because Debian's sslscan
links an OpenSSL built without zlib, so it cannot test compression at all
("OpenSSL version does not support compression").
"""

import socket
import struct
import sys
import xml.etree.ElementTree as ET

ALLOWED_VERSIONS = {"1.2", "1.3"}
AEAD_MARKERS = ("-GCM-", "CHACHA20-POLY1305", "-CCM")


def judge_scan(path):
    """Findings of one sslscan XML report, or None if it tested nothing."""
    root = ET.parse(path).getroot()
    test = root.find("ssltest")
    if test is None:
        return None
    findings = []
    protocols = test.findall("protocol")
    ciphers = test.findall("cipher")
    if not protocols or not ciphers:
        return None
    for p in protocols:
        name = f"{p.get('type').upper()}v{p.get('version')}"
        enabled = p.get("enabled") == "1"
        if enabled and not (p.get("type") == "tls" and p.get("version") in ALLOWED_VERSIONS):
            findings.append(f"protocol: {name} is enabled (only TLS 1.2 and 1.3 are allowed)")
    if not any(p.get("enabled") == "1" for p in protocols):
        return None
    for c in ciphers:
        version, name = c.get("sslversion"), c.get("cipher")
        if version == "TLSv1.3":
            # Every TLS 1.3 suite is AEAD with (EC)DHE; the scanner names them.
            if not name.startswith("TLS_") or not any(m in name.replace("_", "-") for m in AEAD_MARKERS):
                findings.append(f"suite: {version} {name} is not an AEAD suite")
            continue
        if not name.startswith("ECDHE-"):
            findings.append(f"suite: {version} {name} has no ECDHE key exchange")
        if not any(m in name for m in AEAD_MARKERS):
            findings.append(f"suite: {version} {name} is not AEAD")
        if c.get("strength") in ("null", "anonymous", "weak", "medium"):
            findings.append(f"suite: {version} {name} rated {c.get('strength')} by sslscan")
    reneg = test.find("renegotiation")
    if reneg is None:
        findings.append("renegotiation: the scan did not test it")
    elif reneg.get("supported") == "1":
        kind = "secure" if reneg.get("secure") == "1" else "INSECURE"
        findings.append(f"renegotiation: {kind} renegotiation is supported (the relay allows none)")
    comp = test.find("compression")
    if comp is not None and comp.get("supported") == "1":
        findings.append("compression: TLS compression is supported (CRIME)")
    for h in test.findall("heartbleed"):
        if h.get("vulnerable") == "1":
            findings.append(f"heartbleed: {h.get('sslversion')} is vulnerable")
    return findings


def client_hello():
    """A TLS 1.2 ClientHello offering ECDHE-AEAD suites and DEFLATE then null."""
    suites = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8]
    ext = b""
    # supported_groups: x25519, secp256r1, secp384r1
    groups = struct.pack(">HHH", 0x001D, 0x0017, 0x0018)
    ext += struct.pack(">HH", 0x000A, len(groups) + 2) + struct.pack(">H", len(groups)) + groups
    # ec_point_formats: uncompressed
    ext += struct.pack(">HHB", 0x000B, 2, 1) + b"\x00"
    # signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    algs = struct.pack(">HHH", 0x0403, 0x0804, 0x0401)
    ext += struct.pack(">HH", 0x000D, len(algs) + 2) + struct.pack(">H", len(algs)) + algs
    # renegotiation_info (empty): a client that says it is not renegotiating
    ext += struct.pack(">HH", 0xFF01, 1) + b"\x00"
    body = b"\x03\x03" + bytes(range(32)) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x02\x01\x00"  # two compression methods: DEFLATE (1), null (0)
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def probe_compression(host, port):
    """The compression method the server picks when offered DEFLATE first."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(client_hello())
        header = read_exact(s, 5)
        kind, _, length = struct.unpack(">BHH", header)
        record = read_exact(s, length)
        if kind == 0x15:
            raise ConnectionError(f"the server sent an alert instead of a ServerHello: {record.hex()}")
        if kind != 0x16 or record[0] != 0x02:
            raise ConnectionError(f"not a ServerHello (record type {kind}, handshake {record[0]})")
        at = 4 + 2 + 32
        sid_len = record[at]
        at += 1 + sid_len
        suite = struct.unpack(">H", record[at:at + 2])[0]
        method = record[at + 2]
        return suite, method


def deflate_server():
    """Answers one ClientHello with a ServerHello that selects DEFLATE."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(f"127.0.0.1:{srv.getsockname()[1]}", flush=True)
    srv.settimeout(30)
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(10)
        header = read_exact(conn, 5)
        read_exact(conn, struct.unpack(">H", header[3:5])[0])
        body = b"\x03\x03" + bytes(32) + b"\x00" + struct.pack(">H", 0xC02B) + b"\x01" + b"\x00\x00"
        hs = b"\x02" + struct.pack(">I", len(body))[1:] + body
        conn.sendall(b"\x16\x03\x03" + struct.pack(">H", len(hs)) + hs)
    srv.close()


def main(argv):
    if len(argv) == 3 and argv[1] == "scan":
        findings = judge_scan(argv[2])
        if findings is None:
            print(f"{argv[2]}: the scan tested nothing (no protocol or suite found)")
            return 2
    elif len(argv) == 3 and argv[1] == "compression":
        host, _, port = argv[2].rpartition(":")
        suite, method = probe_compression(host, int(port))
        print(f"{argv[2]}: offered DEFLATE and null; server chose suite 0x{suite:04X}, compression {method}")
        findings = [] if method == 0 else [f"compression: the server chose method {method} (DEFLATE is 1)"]
    elif len(argv) == 2 and argv[1] == "deflate-server":
        deflate_server()
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 64
    for f in findings:
        print(f"  FAIL {f}")
    return 1 if findings else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ConnectionError, ET.ParseError, ValueError) as e:
        print(f"tls-check: {e}", file=sys.stderr)
        sys.exit(2)
