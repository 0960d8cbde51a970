# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The differential HTTP cases of test_http.sh.

run: sends every case to one address (a pod straight, or a service VIP
through the mesh) and writes what the pod received (from the lab server's
/sha) and what the client got, as JSON.
compare: the straight run against a mesh run, one ok/FAIL line per case.
Real clients where they fit (curl, http.client), raw sockets where the bytes
on the wire are the point.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HOP = {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"}
# headers a mesh may add on either side; never compared
MESH_PREFIXES = ("x-forwarded-", "x-envoy-", "x-b3-", "x-ksteer-", "x-request-id", "x-istio-")
MESH = {"b3", "traceparent", "tracestate", "forwarded", "via", "server"}
SIZES = [0, 1, 6, 65536, 1 << 20, 50_000_000]
BIG = 50_000_000


def e2e(headers, drop=()):
    out = []
    for n, v in headers:
        k = n.lower()
        if k in HOP or k in MESH or k.startswith(MESH_PREFIXES) or k in drop:
            continue
        out.append([k, v])
    return out


def body_of(n, seed=0):
    return random.Random(n * 31 + seed).randbytes(n)


def pattern(n):
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Conn:
    """One client connection that reads answers as RFC 9112 frames them."""

    def __init__(self, addr, timeout=5.0, rcvbuf=0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(addr)
        self.buf = b""
        self.eof = False

    def fill(self, n=65536):
        if self.eof:
            return False
        d = self.s.recv(n)
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise EOFError("connection closed after %d bytes of an unfinished line" % len(self.buf))
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def take(self, n, h):
        got = 0
        while got < n:
            if not self.buf and not self.fill():
                raise EOFError("connection closed after %d of %d body bytes" % (got, n))
            k = min(n - got, len(self.buf))
            h.update(self.buf[:k])
            if self.keeping:
                self.keep += self.buf[:k]
            self.buf = self.buf[k:]
            got += k
        return got

    def head(self):
        st = self.line().decode("latin-1")
        parts = st.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise ValueError("not a status line: %r" % st[:80])
        hs = []
        while True:
            ln = self.line()
            if not ln:
                break
            n, _, v = ln.decode("latin-1").partition(":")
            hs.append([n, v.strip()])
        return parts[0], int(parts[1]), hs

    def response(self, method="GET", keep_body=True, want_interim=False):
        """The final answer; 1xx before it listed in 'interim'. Body kept or only hashed."""
        interim = []
        while True:
            ver, status, hs = self.head()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                if want_interim:
                    return {"version": ver, "status": status, "headers": hs, "interim": interim}
                continue
            break
        h = hashlib.sha256()
        self.keep, self.keeping = b"", keep_body
        lower = {n.lower(): v for n, v in hs}
        framing = "none"
        trailers = []
        n = 0
        if method == "HEAD" or status in (204, 304) or status == 101:
            pass
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            framing = "chunked"
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    break
                n += self.take(size, h)
                if self.line() != b"":
                    raise ValueError("chunk without CRLF")
            while True:
                ln = self.line()
                if not ln:
                    break
                tn, _, tv = ln.decode("latin-1").partition(":")
                trailers.append([tn, tv.strip()])
        elif "content-length" in lower:
            framing = "length"
            n = self.take(int(lower["content-length"]), h)
        else:
            framing = "close"
            while self.buf or self.fill():
                n += len(self.buf)
                h.update(self.buf)
                if keep_body:
                    self.keep += self.buf
                self.buf = b""
        return {"version": ver, "status": status, "headers": hs, "length": n, "sha256": h.hexdigest(),
                "framing": framing, "trailers": trailers, "interim": interim}

    def close(self):
        self.s.close()


def request(method, target, host, extra, body=None, headers=(), chunks=None, trailers=None, version="HTTP/1.1"):
    hs = [("Host", host)] + list(extra) + list(headers)
    if chunks is not None:
        hs.append(("Transfer-Encoding", "chunked"))
    elif body is not None:
        hs.append(("Content-Length", str(len(body))))
    out = ("%s %s %s\r\n" % (method, target, version)).encode()
    out += b"".join(("%s: %s\r\n" % (n, v)).encode() for n, v in hs) + b"\r\n"
    if chunks is not None:
        for c in chunks:
            out += b"%x\r\n" % len(c) + c + b"\r\n"
        out += b"0\r\n" + b"".join(("%s: %s\r\n" % t).encode() for t in (trailers or [])) + b"\r\n"
    elif body:
        out += body
    return out


def pod_view(r):
    """What the pod said it received, from a /sha answer's body (kept in r['body'])."""
    try:
        j = json.loads(r["body"])
    except (KeyError, ValueError):
        return {"error": "no JSON from /sha: %r" % r.get("body", b"")[:120]}
    return {"method": j["method"], "target": j["target"], "version": j["version"],
            "headers": e2e(j["headers"]), "trailers": e2e(j["trailers"]),
            "length": j["length"], "sha256": j["sha256"]}


def client_view(r, with_body=True):
    v = {"status": r["status"], "headers": e2e(r["headers"], drop=("date",) if with_body else ("date", "content-length"))}
    if with_body:
        v["length"], v["sha256"] = r["length"], r["sha256"]
    return v


class Run:
    def __init__(self, a):
        host, port = a.to.rsplit(":", 1)
        self.addr = (host, int(port))
        self.host = a.host
        self.extra = [tuple(h.split(":", 1)) for h in a.header]
        self.agents = [int(p) for p in a.agents.split(",") if p]
        self.dir = tempfile.mkdtemp(prefix="http_diff.")
        self.url = "http://%s:%d" % self.addr

    def raw(self, data, method="GET", timeout=5.0, **kw):
        c = Conn(self.addr, timeout)
        try:
            c.s.sendall(data)
            r = c.response(method)
            r["body"] = c.keep
            return r
        finally:
            c.close()

    def sha_exchange(self, c, data):
        c.s.sendall(data)
        r = c.response()
        r["body"] = c.keep
        return r

    def curl(self, target, args, timeout=20):
        hdr, out = os.path.join(self.dir, "h"), os.path.join(self.dir, "o")
        extra = ["-H", "Host: " + self.host] + [x for n, v in self.extra for x in ("-H", "%s: %s" % (n, v))]
        p = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-o", out, "-D", hdr, "-w", "%{http_code}"]
                           + extra + args + [self.url + target], capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError("curl exit %d: %s" % (p.returncode, p.stderr.strip()[:200]))
        blocks = open(hdr, "rb").read().decode("latin-1").split("\r\n\r\n")
        blocks = [b for b in blocks if b.strip()]
        interim = [int(b.split()[1]) for b in blocks[:-1]]
        lines = blocks[-1].split("\r\n")
        hs = [[n, v.strip()] for n, _, v in (l.partition(":") for l in lines[1:])]
        body = open(out, "rb").read()
        return {"status": int(p.stdout), "headers": hs, "body": body, "length": len(body), "sha256": sha(body),
                "interim": interim}

    def file(self, n):
        f = os.path.join(self.dir, "body%d" % n)
        if not os.path.exists(f):
            with open(f, "wb") as w:
                w.write(body_of(n))
        return f

    # ---- the cases: each returns (view to compare, [failed expectations]) ----

    def body_cl(self, n):
        r = self.curl("/sha", ["-H", "Expect:", "--data-binary", "@" + self.file(n)], 60)
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, n, body_of(n))

    def expect_body(self, r, p, n, body):
        bad = []
        if r["status"] != 200:
            bad.append("status %d, not 200" % r["status"])
        if p.get("length") != n or p.get("sha256") != sha(body):
            bad.append("the pod read %s bytes sha %s; sent %d bytes sha %s"
                       % (p.get("length"), str(p.get("sha256"))[:16], n, sha(body)[:16]))
        return bad

    def chunked_curl(self):
        n = 65536
        r = self.curl("/sha", ["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + self.file(n)])
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, n, body_of(n))

    def chunked_trailers(self):
        body = body_of(10000, 1)
        chunks = [body[:1], body[1:4000], body[4000:]]
        r = self.raw(request("POST", "/sha", self.host, self.extra, chunks=chunks,
                             headers=[("Trailer", "X-Sum")], trailers=[("X-Sum", sha(body)[:16])]))
        p = pod_view(r)
        bad = self.expect_body(r, p, len(body), body)
        if ["x-sum", sha(body)[:16]] not in p.get("trailers", []):
            bad.append("the pod saw trailers %s, sent X-Sum" % p.get("trailers"))
        return {"pod": p, "client": client_view(r, False)}, bad

    def expect_curl_put(self):
        n = 2 << 20  # curl -T always asks Expect: 100-continue
        r = self.curl("/sha", ["-T", self.file(n)], 6)
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, n, body_of(n))

    def expect_curl_post(self):
        n = 4 << 20  # above 1 MiB curl -d asks Expect: 100-continue by itself
        r = self.curl("/sha", ["--data-binary", "@" + self.file(n)], 6)
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, n, body_of(n))

    def expect_raw(self):
        body = body_of(65536, 2)
        head = request("POST", "/sha", self.host, self.extra, body=body, headers=[("Expect", "100-continue")])
        c = Conn(self.addr, 3)
        try:
            c.s.sendall(head[: len(head) - len(body)])
            try:
                i = c.response(want_interim=True)
            except socket.timeout:
                return {"got": "no 100 within 3 s"}, ["no 100 Continue within 3 s of the head"]
            if i["status"] != 100:
                return {"got": "%d before the body" % i["status"]}, ["answered %d before the body, not 100" % i["status"]]
            c.s.sendall(body)
            r = c.response()
            r["body"] = c.keep
        finally:
            c.close()
        p = pod_view(r)
        return {"got": "100", "pod": p, "client": client_view(r, False)}, self.expect_body(r, p, len(body), body)

    def pipelined(self):
        bodies = [b"one", b"second body", body_of(1000, 3)]
        data = b"".join(request("POST", "/sha?n=%d" % i, self.host, self.extra, body=b) for i, b in enumerate(bodies))
        c = Conn(self.addr)
        views, bad = [], []
        try:
            c.s.sendall(data)
            for i, b in enumerate(bodies):
                r = c.response()
                r["body"] = c.keep
                p = pod_view(r)
                views.append({"pod": p, "status": r["status"]})
                if r["status"] != 200 or p.get("target") != "/sha?n=%d" % i or p.get("sha256") != sha(b):
                    bad.append("answer %d: status %d, the pod saw %s %s bytes (want /sha?n=%d, %d bytes)"
                               % (i, r["status"], p.get("target"), p.get("length"), i, len(b)))
        except (OSError, EOFError, ValueError) as e:
            bad.append("after %d answers: %s" % (len(views), e))
        finally:
            c.close()
        return {"answers": views}, bad

    def then_sha(self, first, method):
        """first on a keep-alive connection, then GET /sha on it: the framing of the first holds."""
        c = Conn(self.addr, 3)
        bad = []
        try:
            c.s.sendall(first)
            r1 = c.response(method)
            leftover = c.buf
            r2 = self.sha_exchange(c, request("GET", "/sha", self.host, self.extra))
            if r2["status"] != 200:
                bad.append("the next request on the connection: status %d" % r2["status"])
            v = {"first": client_view(r1), "leftover": len(leftover), "next": r2["status"]}
        except (OSError, EOFError, ValueError) as e:
            return {"error": str(e)}, ["%s" % e]
        finally:
            c.close()
        return v, bad

    def head_bytes(self):
        v, bad = self.then_sha(request("HEAD", "/bytes/1000", self.host, self.extra), "HEAD")
        cl = dict((n.lower(), x) for n, x in v.get("first", {}).get("headers", [])).get("content-length")
        if "first" in v and (v["first"]["status"] != 200 or cl != "1000"):
            bad.append("HEAD /bytes/1000: status %d, content-length %s" % (v["first"]["status"], cl))
        return v, bad

    def status_keepalive(self, n):
        v, bad = self.then_sha(request("GET", "/status/%d" % n, self.host, self.extra), "GET")
        if "first" in v and v["first"]["status"] != n:
            bad.append("status %d, not %d" % (v["first"]["status"], n))
        return v, bad

    def chunked_answer(self):
        n = 1000000
        c = http.client.HTTPConnection(*self.addr, timeout=5)
        try:
            hs = {"Host": self.host, **dict(self.extra)}
            c.request("GET", "/chunked/%d" % n, headers=hs)
            r = c.getresponse()
            body = r.read()
            view = {"status": r.status, "headers": e2e(r.getheaders(), drop=("date",)), "length": len(body),
                    "sha256": sha(body), "chunked": r.chunked}
            c.request("GET", "/sha", headers=hs)
            r2 = c.getresponse()
            r2.read()
            view["next"] = r2.status
        finally:
            c.close()
        bad = [] if body == pattern(n) and view["next"] == 200 else [
            "%d bytes (want %d of the pattern), next request %d" % (len(body), n, view["next"])]
        return view, bad

    def close_answer(self):
        n = 1000000
        r = self.raw(request("GET", "/close/%d" % n, self.host, self.extra), timeout=10)
        bad = [] if r["sha256"] == sha(pattern(n)) else ["%d bytes, framing %s (want %d of the pattern)" % (r["length"], r["framing"], n)]
        return client_view(r), bad

    def upgrade(self):
        data = body_of(262144, 4)
        c = Conn(self.addr)
        try:
            c.s.sendall(request("GET", "/upgrade", self.host, self.extra,
                                headers=[("Connection", "Upgrade"), ("Upgrade", "echo")]))
            r = c.response()
            if r["status"] != 101:
                return {"status": r["status"]}, ["status %d, not 101" % r["status"]]
            got = [c.buf]
            c.buf = b""

            def send():
                try:
                    for i in range(0, len(data), 8192):
                        c.s.sendall(data[i: i + 8192])
                    c.s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            t = threading.Thread(target=send)
            t.start()
            try:
                while True:
                    d = c.s.recv(65536)
                    if not d:
                        break
                    got.append(d)
            except OSError as e:
                got.append(b"")
                err = str(e)
            else:
                err = ""
            t.join()
        finally:
            c.close()
        echo = b"".join(got)
        v = {"status": 101, "headers": e2e(r["headers"], drop=("date",)), "echoed": len(echo), "same": echo == data}
        return v, [] if echo == data else ["echoed %d of %d bytes%s %s" % (len(echo), len(data), ", same prefix" if data.startswith(echo) else "", err)]

    def refuse(self, data):
        try:
            r = self.raw(data, timeout=3)
            st = r["status"]
        except (OSError, EOFError, ValueError) as e:
            st = "no answer (%s)" % type(e).__name__
        try:
            alive = self.raw(request("GET", "/sha", self.host, self.extra))["status"]
        except (OSError, EOFError, ValueError) as e:
            alive = str(e)
        return {"status": st, "then": alive}, []

    def slow_writer(self):
        body = body_of(65536, 5)
        data = request("POST", "/sha", self.host, self.extra, body=body)
        c = Conn(self.addr)
        try:
            head = len(data) - len(body)
            for i in range(0, head, 10):  # the head in 10-byte pieces too
                c.s.sendall(data[i: min(i + 10, head)])
            for i in range(0, len(body), 2048):
                c.s.sendall(body[i: i + 2048])
                time.sleep(0.04)
            r = c.response()
            r["body"] = c.keep
        finally:
            c.close()
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, len(body), body)

    def slow_reader(self):
        c = Conn(self.addr, timeout=20, rcvbuf=65536)
        h = hashlib.sha256()
        t0 = time.time()
        try:
            c.s.sendall(request("GET", "/bytes/%d" % BIG, self.host, self.extra))
            ver, st, hs = c.head()
            n = 0
            rss = 0
            while n < BIG:
                if not c.buf and not c.fill(32768):
                    break
                n += len(c.buf)
                h.update(c.buf)
                c.buf = b""
                time.sleep(0.003)
                if n % (8 << 20) < 32768:
                    rss = max(rss, self.rss())
        finally:
            c.close()
        secs = time.time() - t0
        ok = n == BIG and h.hexdigest() == sha(pattern(BIG))
        return ({"status": st, "length": n, "sha256": h.hexdigest()},
                [] if ok else ["%d of %d bytes in %.1f s, sha %s" % (n, BIG, secs, "right" if ok else "wrong")],
                "%.1f MB/s over %.1f s, agents' RSS peak %d KiB" % (n / secs / 1e6, secs, rss))

    def half_close(self, method, body):
        c = Conn(self.addr)
        try:
            c.s.sendall(request(method, "/sha", self.host, self.extra, body=body))
            c.s.shutdown(socket.SHUT_WR)
            r = c.response()
            r["body"] = c.keep
        except (OSError, EOFError, ValueError) as e:
            return {"error": str(e)}, ["no answer after the half-close: %s" % e]
        finally:
            c.close()
        p = pod_view(r)
        return {"pod": p, "client": client_view(r, False)}, self.expect_body(r, p, len(body or b""), body or b"")

    def rss(self):
        total = 0
        for pid in self.agents:
            try:
                for ln in open("/proc/%d/status" % pid):
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
            except OSError:
                pass
        return total

    def never_reads(self):
        """Two clients ask for 50 MB each and never read: the agents' RSS must not take it all."""
        if not self.agents:
            return {"skipped": "no agent on this path"}, []
        r0 = self.rss()
        cs = []
        try:
            for i in range(2):
                c = Conn(self.addr, rcvbuf=4096)
                c.s.sendall(request("GET", "/bytes/%d" % BIG, self.host, self.extra))
                cs.append(c)
            peak = r0
            for i in range(12):
                time.sleep(0.5)
                peak = max(peak, self.rss())
        finally:
            for c in cs:
                c.close()
        grow = peak - r0
        return {"rss_growth_kib": grow}, [] if grow < 32768 else [
            "the agents' RSS grew %d KiB (%d -> %d) for 2 x 50 MB nobody reads (bound: 32 MiB)" % (grow, r0, peak)]

    def cases(self):
        raw_bad = [
            ("absolute-form", b"GET http://%s/sha HTTP/1.1\r\nHost: %s\r\n\r\n"),
            ("duplicate Host", b"GET /sha HTTP/1.1\r\nHost: %s\r\nHost: %s.evil\r\n\r\n"),
            ("whitespace before colon", b"GET /sha HTTP/1.1\r\nHost: %s\r\nX-Bad : 1\r\n\r\n"),
            ("bare CR", b"GET /sha HTTP/1.1\r\nHost: %s\r\nX-Bad: a\rb\r\n\r\n"),
            ("bad chunk syntax", b"POST /sha HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
            ("obs-fold", b"GET /sha HTTP/1.1\r\nHost: %s\r\nX-Bad: a\r\n folded\r\n\r\n"),
        ]
        h = self.host.encode()
        ex = b"".join(("%s: %s\r\n" % kv).encode() for kv in self.extra)
        out = [("body %d B" % n, lambda n=n: self.body_cl(n)) for n in SIZES]
        out += [
            ("chunked upload", self.chunked_curl),
            ("chunked upload with trailers", self.chunked_trailers),
            ("Expect: 100-continue, curl -T 2 MiB", self.expect_curl_put),
            ("Expect: 100-continue, curl -d @4 MiB", self.expect_curl_post),
            ("Expect: 100-continue, body sent after the 100", self.expect_raw),
            ("3 POSTs pipelined in one send", self.pipelined),
            ("HEAD /bytes/1000, then a request on the connection", self.head_bytes),
            ("204, then a request on the connection", lambda: self.status_keepalive(204)),
            ("304, then a request on the connection", lambda: self.status_keepalive(304)),
            ("418 with a body, then a request on the connection", lambda: self.status_keepalive(418)),
            ("chunked answer of 1 MB (http.client), then a request", self.chunked_answer),
            ("close-delimited answer of 1 MB", self.close_answer),
            ("Upgrade: echo, 101, 256 KiB echoed", self.upgrade),
            ("slow writer (head in 10 B pieces, body in 2 KiB every 40 ms)", self.slow_writer),
            ("half-close after a GET", lambda: self.half_close("GET", None)),
            ("half-close after a POST with a body", lambda: self.half_close("POST", b"abcdef")),
            ("slow reader of 50 MB", self.slow_reader),
            ("client that never reads 2 x 50 MB", self.never_reads),
        ]
        for name, tmpl in raw_bad:
            n = tmpl.count(b"%s")
            data = tmpl % ((h,) * n)
            data = data.replace(b"\r\n\r\n", b"\r\n" + ex + b"\r\n", 1) if ex else data
            out.append(("refuse: " + name, lambda d=data: self.refuse(d)))
        return out


def run(a):
    r = Run(a)
    res = {}
    for name, fn in r.cases():
        if a.only and not re.search(a.only, name):
            continue
        t0 = time.time()
        note = ""
        try:
            got = fn()
            view, bad = got[0], got[1]
            note = got[2] if len(got) > 2 else ""
        except Exception as e:  # a case that broke is a result, not the end of the run
            view, bad = {"error": "%s: %s" % (type(e).__name__, e)}, ["%s: %s" % (type(e).__name__, e)]
        res[name] = {"view": view, "bad": bad, "secs": round(time.time() - t0, 2), "note": note}
    json.dump(res, open(a.out, "w"), indent=1)
    shutil.rmtree(r.dir, ignore_errors=True)


def short(x, n=300):
    s = json.dumps(x, sort_keys=True)
    return s if len(s) <= n else s[:n] + "..."


def diff(a, b, path=""):
    """The differing leaves of two views, as 'path: direct=... mesh=...'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += diff(a.get(k), b.get(k), path + "." + k if path else k)
        return out
    if a != b:
        return ["%s: direct %s, mesh %s" % (path, short(a, 240), short(b, 240))]
    return []


def compare(a):
    base, got = json.load(open(a.direct)), json.load(open(a.mesh))
    p = f = 0
    for name, g in got.items():
        b = base.get(name)
        tag = "%s: %s" % (a.label, name)
        why = []
        if name.startswith("refuse: "):
            v = g["view"]
            if v.get("status") != 400 or v.get("then") != 200:
                why.append("expected 400 and the next connection answered 200; saw %s, then %s" % (v.get("status"), v.get("then")))
            extra = "(straight to the pod: %s)" % (b["view"].get("status") if b else "-")
        else:
            why += ["expected: " + x for x in g["bad"]]
            if b is not None and not b["bad"] and name != "client that never reads 2 x 50 MB" and name != "slow reader of 50 MB":
                why += diff(b["view"], g["view"])
            extra = g.get("note", "")
        if why:
            f += 1
            print("FAIL %s  [%.1f s]" % (tag, g["secs"]))
            for w in why[:8]:
                print("     " + w)
        else:
            p += 1
            print("ok   %s  [%.1f s] %s" % (tag, g["secs"], extra))
    print("counts %d %d" % (p, f))


def check(a):
    """The straight run alone: its own expectations (the baseline must be right)."""
    res = json.load(open(a.direct))
    p = f = 0
    for name, g in res.items():
        if name.startswith("refuse: ") or name == "client that never reads 2 x 50 MB":
            print("     %s: %s: %s" % (a.label, name, short(g["view"], 160)))
            continue
        if g["bad"]:
            f += 1
            print("FAIL %s: %s" % (a.label, name))
            for w in g["bad"][:5]:
                print("     expected: " + w)
        else:
            p += 1
            print("ok   %s: %s  [%.1f s] %s" % (a.label, name, g["secs"], g.get("note", "")))
    print("counts %d %d" % (p, f))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--to", required=True)
    r.add_argument("--host", required=True)
    r.add_argument("--header", action="append", default=[])
    r.add_argument("--agents", default="")
    r.add_argument("--only", default="")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("direct")
    c.add_argument("mesh")
    c.add_argument("label")
    k = sub.add_parser("check")
    k.add_argument("direct")
    k.add_argument("label")
    a = ap.parse_args()
    {"run": run, "compare": compare, "check": check}[a.cmd](a)


if __name__ == "__main__":
    main()
