#!/usr/bin/python3
"""Drags a file onto an X11 window the way a file manager does (XDND v5).

    xdnd-drop.py WINDOW_ID X Y PATH [--hover SECONDS] [--cancel]

Acts as the drag source: sends XdndEnter and XdndPosition at root
coordinates (X, Y), serves the `text/uri-list` selection the target asks
for, waits SECONDS (so the target's "drop here" hint can be photographed),
then sends XdndDrop and waits for XdndFinished (or XdndLeave with
--cancel). Uses $DISPLAY; every wait is bounded. Used by
scripts/screenshots.sh to check a real window's drag-and-drop under Xvfb.
Needs python3-xlib (Debian), hence /usr/bin/python3.
"""

import argparse
import sys
import time
import urllib.parse

from Xlib import X, Xatom, display
from Xlib.protocol import event

VERSION = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("window", type=lambda s: int(s, 0))
    ap.add_argument("x", type=int)
    ap.add_argument("y", type=int)
    ap.add_argument("path")
    ap.add_argument("--hover", type=float, default=0.5)
    ap.add_argument("--cancel", action="store_true")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    d = display.Display()
    atom = lambda name: d.intern_atom(name)
    A = {n: atom(n) for n in (
        "XdndAware", "XdndEnter", "XdndPosition", "XdndStatus", "XdndDrop",
        "XdndFinished", "XdndLeave", "XdndSelection", "XdndActionCopy",
        "text/uri-list", "TARGETS")}
    root = d.screen().root
    target = d.create_resource_object("window", a.window)
    aware = target.get_full_property(A["XdndAware"], X.AnyPropertyType)
    if aware is None:
        sys.exit(f"window {a.window:#x} is not XdndAware")

    src = root.create_window(0, 0, 1, 1, 0, X.CopyFromParent, X.InputOnly,
                             X.CopyFromParent, event_mask=X.PropertyChangeMask)
    src.set_selection_owner(A["XdndSelection"], X.CurrentTime)
    uri = ("file://" + urllib.parse.quote(a.path) + "\r\n").encode()

    def send(kind, data):
        ev = event.ClientMessage(window=target, client_type=A[kind],
                                 data=(32, (data + [0] * 5)[:5]))
        target.send_event(ev, event_mask=0)
        d.flush()

    def pump(until, want=None):
        """Serves selection requests until `want` arrives or time runs out."""
        while time.monotonic() < until:
            while d.pending_events():
                ev = d.next_event()
                if ev.type == X.SelectionRequest:
                    serve(ev)
                elif ev.type == X.ClientMessage and want and ev.client_type == A[want]:
                    return ev
            time.sleep(0.01)
        return None

    def serve(req):
        prop = req.property or req.target
        if req.target == A["text/uri-list"]:
            req.requestor.change_property(prop, A["text/uri-list"], 8, uri)
        elif req.target == A["TARGETS"]:
            req.requestor.change_property(prop, Xatom.ATOM, 32, [A["text/uri-list"]])
        else:
            prop = X.NONE
        ev = event.SelectionNotify(time=req.time, requestor=req.requestor,
                                   selection=req.selection, target=req.target,
                                   property=prop)
        req.requestor.send_event(ev, event_mask=0)
        d.flush()

    sid = src.id
    send("XdndEnter", [sid, VERSION << 24, A["text/uri-list"], 0, 0])
    send("XdndPosition", [sid, 0, (a.x << 16) | a.y, X.CurrentTime, A["XdndActionCopy"]])
    status = pump(time.monotonic() + a.timeout, "XdndStatus")
    if status is None:
        sys.exit("no XdndStatus from the target")
    accepted = status.data[1][1] & 1
    print(f"target {'accepts' if accepted else 'refuses'} the drop", file=sys.stderr)
    pump(time.monotonic() + a.hover)
    if a.cancel or not accepted:
        send("XdndLeave", [sid, 0, 0, 0, 0])
        pump(time.monotonic() + 0.3)
        return 0 if a.cancel else 1
    send("XdndDrop", [sid, 0, X.CurrentTime, 0, 0])
    if pump(time.monotonic() + a.timeout, "XdndFinished") is None:
        sys.exit("no XdndFinished from the target")
    print("dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
