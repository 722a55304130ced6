#!/usr/bin/env bash
# scripts/tshark-check.sh judges the real-peer capture in CI. Its rules, on small synthetic captures of one
# NVMe/TCP stream (port 4420): a well-formed PDU passes; payload that is no PDU fails when the stream is seen
# closing (FIN) after it; the same payload at the end of a stream the capture stops inside (no FIN or RST) is
# a PDU the capture cut off, so it is noted and not judged; a PDU whose header length is wrong fails either way.
# Exit: 0 passed, 1 failed, 77 skipped (no tshark or python3).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=tshark-check-rules
command -v tshark >/dev/null || { echo "$me: SKIP (tshark is not installed)"; exit 77; }
command -v python3 >/dev/null || { echo "$me: SKIP (python3 is not installed)"; exit 77; }
work=$(mktemp -d /tmp/anvme-tshark.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "$me: FAIL ($*)"; exit 1; }

# capture FILE SPEC...: a pcap (raw IPv4) of one TCP stream 10.0.0.1:50000 -> 10.0.0.2:4420 after its handshake.
# SPEC: "resp" a whole 24-byte CapsuleResp, "badhlen" a CapsuleResp whose HLEN says 28, "start" the first
# 24 bytes of a 4,120-byte C2HData (the rest never comes), "fin" the stream's FIN.
capture() {
  python3 - "$@" <<'EOF'
import struct, sys
path, specs = sys.argv[1], sys.argv[2:]

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def packet(seq, ack, flags, payload):
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    tcp = struct.pack("!HHIIBBHHH", 50000, 4420, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp

def pdu(pdu_type, hlen, plen, length):
    header = struct.pack("<BBBBI", pdu_type, 0, hlen, 0, plen)
    return (header + bytes(length))[:length]

syn, ack_flag, psh, fin = 0x02, 0x10, 0x08, 0x01
frames = [(packet(1000, 0, syn, b""))]
seq = 1001
for spec in specs:
    if spec == "resp":
        payload, flags = pdu(5, 24, 24, 24), ack_flag | psh
    elif spec == "badhlen":
        payload, flags = pdu(5, 28, 28, 28), ack_flag | psh
    elif spec == "start":
        payload, flags = pdu(7, 24, 24 + 4096, 24), ack_flag
    elif spec == "fin":
        payload, flags = b"", ack_flag | fin
    else:
        raise SystemExit("unknown spec " + spec)
    frames.append(packet(seq, 1, flags, payload))
    seq += len(payload) + (1 if flags & fin else 0)

with open(path, "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    for i, frame in enumerate(frames):
        out.write(struct.pack("<IIII", 1_700_000_000, i * 1000, len(frame), len(frame)))
        out.write(frame)
EOF
}

# expect NAME STATUS PATTERN SPEC...: tshark-check on that capture exits STATUS and prints PATTERN.
expect() {
  local name=$1 status=$2 pattern=$3 rc=0
  shift 3
  capture "$work/$name.pcap" "$@"
  scripts/tshark-check.sh "$work/$name.pcap" 4420 >"$work/$name.out" 2>&1 || rc=$?
  [ "$rc" -eq "$status" ] || fail "$name: exit $rc, expected $status: $(cat "$work/$name.out")"
  grep -q -- "$pattern" "$work/$name.out" || fail "$name: no '$pattern' in: $(cat "$work/$name.out")"
  echo "$me: $name: exit $rc as expected ($(grep -m 1 -- "$pattern" "$work/$name.out"))"
}

expect whole-pdu 0 "CapsuleResp=2" resp resp fin
expect cut-pdu-in-closed-stream 1 "24 bytes of TCP payload not dissected" resp start fin
expect cut-pdu-at-capture-end 0 "a PDU the capture ends inside; not judged" resp start
expect bad-header-length-at-capture-end 1 "CapsuleResp with HLEN 28" resp badhlen
echo "$me: PASS"
