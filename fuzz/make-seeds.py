#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/: small real inputs for each fuzz target, taken from the
project's examples and tests. Run again after a format changes; needs python3-cryptography
only for the signed bundles (the key is fuzz_targets/bundle.rs's SEED_KEY)."""
import json, os, struct, pathlib

root = pathlib.Path(__file__).resolve().parent
repo = root.parent
seeds = root / "seeds"

def put(target, name, data):
    d = seeds / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data.encode() if isinstance(data, str) else data)

EVENT = '{"id":"0192f0c4-8e6a-7b3c-9d1e-2f3a4b5c6d7e","device":12,"at":"2026-11-17T10:14:03.120Z","body":%s%s}'
CLOCK = ',"clock":{"boot_id":"5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b","boottime_ms":81234,"synchronised":true}'
S = "0192f0c4-8e6a-7b3c-9d1e-000000000001"
bodies = {
    "hello": '{"type":"hello","software_version":"0.1.0"}',
    "heartbeat": '{"type":"heartbeat","uptime_s":5,"spool_pending":1,"button_fault":"missing"}',
    "session_started": '{"type":"session_started","session":"%s","pupil":"p-7f3a9c"}' % S,
    "session_ended": '{"type":"session_ended","session":"%s","pupil":"p-7f3a9c","started_at":"2026-11-17T09:00:00Z","reason":"signed_out"}' % S,
    "report_filed": '{"type":"report_filed","session":"%s","pupil":"p-7f3a9c","app":"browser","url":"https://example.org/x","page_title":"A page","blank_latency_us":41250,"recent_names":["example.org","cdn.example.org"]}' % S,
    "report_resolved": '{"type":"report_resolved","report":"0192f0c4-8e6a-7b3c-9d1e-2f3a4b5c6d7e","choice":"false_alarm","staff":"s-4f2a9c1e7b30"}',
    "aup_accepted": '{"type":"aup_accepted","session":"%s","pupil":"p-7f3a9c","key_stage":"ks1","text_version":"ks1-0a1b2c3d"}' % S,
    "app_opened": '{"type":"app_opened","session":"%s","pupil":"p-7f3a9c","app":"maths"}' % S,
    "filter_blocked": '{"type":"filter_blocked","session":null,"pupil":null,"layer":"dns","target":"x.example","rule":"exact:x.example","list":"adult"}',
    "device_refused": '{"type":"device_refused","kind":"usb_storage","description":"0781:5567 SanDisk"}',
}
for name, body in bodies.items():
    put("protocol_batch", name + ".json", '{"v":1,"events":[%s]}' % (EVENT % (body, CLOCK if name != "hello" else "")))
put("protocol_batch", "empty.json", '{"v":1,"events":[]}')

put("protocol_enroll", "ok.json", '{"v":1,"device":12,"token":"abc","software_version":"0.1.0"}')
put("protocol_enroll", "old.json", '{"v":0,"device":12,"token":"a","software_version":"0.1.0"}')
put("protocol_enroll", "number.json", '{"v":1,"token":"tok-class-set","serial":"10000000abcdef01"}')

kiosk = (repo / "protocol/data/sample-kiosk-policy.json").read_text()
filter_policy = """{"v":1,"issued_at":"2026-11-17T08:00:00Z","default_profile":"ks2",
 "profiles":{
   "ks1":{"allow_only":["ks1-sites"],"safe_search":"strict"},
   "ks2":{"block_lists":["adult","gambling"],"safe_search":"moderate",
          "bypasses":[{"domain":"Example.ORG.","from":"2026-11-17T10:00:00Z",
                       "until":"2026-11-17T11:00:00Z","reason":"Year 5 history lesson",
                       "approved_by":"staff-42"}]}}}"""
staff = '{"v":1,"issued_at":"2026-11-23T08:00:00Z","staff":[{"id":"s-4f2a9c1e7b30","pin_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}]}'
# With pupils' picture PINs as hashes, and the kiosk policy that then gives only their length.
staff_pictures = staff[:-1] + ',"picture_pins":[{"pupil":"p-7f3a9c","phc":"$argon2id$v=19$m=32768,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}]}'
kiosk_hashed = kiosk.replace('"first_name": "Amira"', '"picture_pin_length": 3, "first_name": "Amira"', 1)
put("kiosk_policy", "sample.json", kiosk)
put("kiosk_policy", "hashed-picture-pin.json", kiosk_hashed)
put("filter_policy", "example.json", filter_policy)
put("staff_pins", "example.json", staff)
put("staff_pins", "picture-pins.json", staff_pictures)

try:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import base64
    key = Ed25519PrivateKey.from_private_bytes(bytes([42] * 32))
    def legacy(payload):
        sig = base64.b64encode(key.sign(payload.encode())).decode()
        return json.dumps({"v": 1, "key_id": "school-2026", "payload": payload, "signature": sig})
    def bundle(kind, payload):
        # protocol/src/bundle.rs signed_message: context, kind, NUL, payload.
        message = b"slate signed bundle v1\0" + kind.encode() + b"\0" + payload.encode()
        sig = base64.b64encode(key.sign(message)).decode()
        return json.dumps({"v": 1, "key_id": "school-2026", "kind": kind, "payload": payload, "signature": sig})
    put("bundle", "kiosk.json", bundle("kiosk-policy", kiosk_hashed))
    put("bundle", "staff.json", bundle("staff-pins", staff_pictures))
    put("bundle", "filter.json", bundle("filter-policy", filter_policy))
    put("bundle", "legacy-kiosk.json", legacy(kiosk))
    put("bundle", "legacy-staff.json", legacy(staff))
    put("bundle", "legacy-filter.json", legacy(filter_policy))
    provision = (repo / "images/slate-provision.conf.example").read_text()
    put("provisioning", "example.conf", provision)
    put("provisioning", "signed.json", bundle("provisioning", provision))
    put("bundle", "provisioning.json", bundle("provisioning", provision))
    put("bundle", "public-key.txt", base64.b64encode(key.public_key().public_bytes_raw()).decode())
    put("protocol_replies", "policy.json", json.dumps({"v": 1,
        "kiosk": json.loads(bundle("kiosk-policy", kiosk_hashed)),
        "filter": json.loads(bundle("filter-policy", filter_policy)),
        "staff": json.loads(bundle("staff-pins", staff_pictures))}))
    put("protocol_replies", "legacy-policy.json", json.dumps({"v": 1, "kiosk": json.loads(legacy(kiosk)),
        "filter": json.loads(legacy(filter_policy)), "staff": json.loads(legacy(staff))}))
except ImportError:
    print("make-seeds: no python3-cryptography; bundle seeds not written")
put("protocol_replies", "commands.json", '{"v":1,"commands":[{"id":1,"issued_at":"2026-11-23T10:14:00Z","expires_at":"2026-11-23T10:24:00Z","action":"eyes_on_me"}],"cursor":1}')
put("protocol_replies", "boot-id.txt", "5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b\n")

h = "ab" * 32
put("url_lists", "list.txt", "00112233445566778899aabbccddeeff\n# comment\n\nurl-sha256:%s\nprefix-sha256:%s\nhost-sha256:%s\n" % (h, h, h))
put("filter_lists", "list.txt", "# adult\nexample.com\n*.example.net\nBAD..name\nurl-sha256:%s\r\nxn--bcher-kva.example\n" % h)

# DNS queries: id, flags (RD), one question, maybe an EDNS OPT record.
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
def query(n, qtype=1, edns=None, flags=0x0100):
    pkt = struct.pack(">HHHHHH", 0x1234, flags, 1, 0, 0, 1 if edns is not None else 0)
    pkt += name(n) + struct.pack(">HH", qtype, 1)
    if edns is not None:
        pkt += b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000 if edns else 0, 0)
    return pkt
put("dns_wire", "a.bin", query("www.Example.org"))
put("dns_wire", "aaaa-edns.bin", query("adult.example", 28, edns=False))
put("dns_wire", "https-do.bin", query("cdn.example.net", 65, edns=True))
put("dns_wire", "cd.bin", query("a.b.c.example", 1, flags=0x0110))

control = repo / "shell/ipc/src/control.rs"
import re
for i, line in enumerate(sorted(set(re.findall(r'r#"(\{"cmd".*?)"#', control.read_text())))):
    put("control_request", "test-%02d.json" % i, line)
put("dns_socket", "recent.json", '{"cmd":"recent"}')
put("dns_socket", "profile.json", '{"cmd":"profile","profile":"ks1"}')
put("dns_socket", "reload.json", '{"cmd":"reload"}')
put("dns_socket", "reply.json", '{"ok":true,"names":["example.org","cdn.example.org"]}')

put("device_config", "example.toml", (repo / "shell/daemon/slate.example.toml").read_text())
put("device_config", "demo.toml", """device_number = 12
school = "Demo Primary"
state_dir = "/var/lib/slate"
control_socket = "/run/slate/control.sock"

[server]
url = "http://127.0.0.1:8443"
enrollment_token = "abc"

[button]
source = "stdin"
""")

put("roster_csv", "tests.csv", "class,first_name,last_name,key_stage\nOak, Amira ,khan,KS1\n\"Year 5\",Ben,O'Neill,ks2\n")
put("roster_csv", "bom-crlf.csv", "\ufeffclass,first_name,last_name,key_stage\r\nOak,Amira,\"Khan\r\nSmith\",ks1\nOak,Ben,Kerr,ks3\r\n")
put("roster_csv", "demo.csv", "class,first_name,last_name,key_stage\nYear 2,Amira,Khan,ks1\n")
put("device_serials_csv", "list.csv", "serial,device\n10000000abcdef01,12\nDC:A6:32:01:02:03,13\n")
put("device_serials_csv", "duplicate.csv", "serial,device\n\n0xabc,1\nabc,2\n")

# The on-screen keyboard's requests as wvkbd sends them (slate-keyboard-layer), native-endian.
def wl(obj, op, payload):
    return struct.pack("=II", obj, (8 + len(payload)) << 16 | op) + payload
def wl_string(t):
    b = t.encode() + b"\0"
    return struct.pack("=I", len(b)) + b + b"\0" * (-len(b) % 4)
put("keyboard_layer", "wvkbd-start.bin",
    wl(1, 1, struct.pack("=I", 2))
    + wl(2, 0, struct.pack("=I", 7) + wl_string("zwlr_layer_shell_v1") + struct.pack("=II", 4, 3))
    + wl(3, 0, struct.pack("=IIII", 9, 5, 0, 2) + wl_string("wvkbd"))
    + wl(9, 8, struct.pack("=I", 2)))
put("keyboard_layer", "delete-id.bin", wl(1, 1, struct.pack("=I", 9)))
