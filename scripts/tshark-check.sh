#!/usr/bin/env bash
# tshark-check.sh PCAP PORT[,PORT...]
#
# Has Wireshark's NVMe/TCP dissector read every NVMe/TCP PDU in PCAP (TCP traffic on the given
# ports) and fails, naming the frame and the complaint, when:
#   - a frame is malformed or carries an expert error;
#   - a PDU has an unknown type, a header length other than the one its type defines, or a PDU
#     length shorter than its header (Wireshark 4.0 does not flag these itself: it just stops
#     decoding that stream);
#   - TCP payload on those ports is neither dissected as NVMe/TCP nor part of a reassembled PDU;
#   - nothing at all was dissected as NVMe/TCP.
# On success prints how many PDUs were dissected, per type. Exit status: 0 pass, 1 fail, 2 usage
# or unreadable capture.
set -euo pipefail

usage() {
  echo "usage: $0 PCAP PORT[,PORT...]" >&2
  exit 2
}
[ $# -eq 2 ] || usage
pcap=$1
[ -r "$pcap" ] || { echo "tshark-check: cannot read $pcap" >&2; exit 2; }
command -v tshark >/dev/null || { echo "tshark-check: tshark is not installed (scripts/ensure-deps.sh)" >&2; exit 2; }

decode=()
port_filter=()
IFS=, read -ra ports <<<"$2"
for p in "${ports[@]}"; do
  if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then usage; fi
  decode+=(-d "tcp.port==$p,nvme-tcp")
  port_filter+=("tcp.port == $p")
done
on_ports=$(printf ' || %s' "${port_filter[@]}")
on_ports="(${on_ports# || })"

errfile=$(mktemp)
trap 'rm -f "$errfile"' EXIT

# tshark with the decode-as rules, two passes (so reassembly is complete), no name resolution.
dissect() {
  if ! tshark -n -r "$pcap" -2 "${decode[@]}" "$@" 2>"$errfile"; then
    echo "tshark-check: tshark could not read $pcap:" >&2
    grep -v 'This could be dangerous' "$errfile" >&2 || true
    exit 2
  fi
}

problems=$(mktemp)
trap 'rm -f "$errfile" "$problems"' EXIT

# 1. Malformed frames and expert errors (severity "Error" is 0x00800000).
dissect -Y '_ws.malformed || _ws.expert.severity >= 0x00800000' -T fields \
  -E occurrence=a -E aggregator=$'\x1e' \
  -e frame.number -e _ws.expert.severity -e _ws.expert.message |
  awk -F'\t' '{
    n = split($2, sev, "\x1e"); split($3, msg, "\x1e"); text = ""
    for (i = 1; i <= n; i++) if (sev[i] + 0 >= 8388608) text = text (text == "" ? "" : "; ") msg[i]
    if (text == "") text = "malformed packet"
    printf "frame %s: %s\n", $1, text
  }' >>"$problems"

# 2. Each PDU: known type, the header length its type defines, PLEN >= HLEN.
pdus=$(dissect -Y nvme-tcp -T fields -E occurrence=a -E aggregator=, \
  -e frame.number -e nvme-tcp.type -e nvme-tcp.hlen -e nvme-tcp.plen -e tcp.stream)
summary=$(awk -F'\t' -v problems="$problems" '
  BEGIN {
    name[0] = "ICReq"; name[1] = "ICResp"; name[2] = "H2CTermReq"; name[3] = "C2HTermReq"
    name[4] = "CapsuleCmd"; name[5] = "CapsuleResp"; name[6] = "H2CData"; name[7] = "C2HData"
    name[9] = "R2T"
    hlen[0] = 128; hlen[1] = 128; hlen[2] = 24; hlen[3] = 24; hlen[4] = 72; hlen[5] = 24
    hlen[6] = 24; hlen[7] = 24; hlen[9] = 24
  }
  NF >= 2 {
    nt = split($2, t, ","); split($3, h, ","); split($4, l, ",")
    for (i = 1; i <= nt; i++) {
      total++
      ty = t[i] + 0
      if (!(ty in name)) {
        printf "frame %s: PDU %d has unknown type 0x%02x\n", $1, i, ty >> problems
        continue
      }
      count[name[ty]]++
      if (h[i] + 0 != hlen[ty])
        printf "frame %s: %s with HLEN %d (the type defines %d)\n", $1, name[ty], h[i], hlen[ty] >> problems
      if (l[i] + 0 < h[i] + 0)
        printf "frame %s: %s with PLEN %d shorter than HLEN %d\n", $1, name[ty], l[i], h[i] >> problems
      if ((ty == 0 || ty == 1) && l[i] + 0 != 128)
        printf "frame %s: %s with PLEN %d (must be 128)\n", $1, name[ty], l[i] >> problems
    }
  }
  END {
    line = ""
    for (ty = 0; ty <= 9; ty++)
      if ((ty in name) && (name[ty] in count)) line = line sprintf(" %s=%d", name[ty], count[name[ty]])
    printf "%d%s\n", total + 0, line
  }' <<<"$pdus")

# 3. Payload on the ports that the dissector did not take (neither a PDU nor part of one). A TCP
#    retransmission repeats bytes already dissected from the original segment (the slow emulated
#    guest makes the host's RTO fire now and then), so it is not a complaint.
#    When the capture itself lost segments of a stream (dumpcap drops packets on a loaded machine),
#    the dissector cannot reassemble the PDUs around the gap; that stream's leftover payload is
#    reported as not judged instead of as a complaint. Malformed PDUs and expert errors (step 1)
#    still fail in every stream.
# Wireshark 4's display-filter sets take comma-separated members: {3,7}.
lost_streams=$(dissect -Y "$on_ports && (tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment)" -T fields -e tcp.stream | sort -un | paste -sd, -)
undissected="$on_ports && tcp.len > 0 && !nvme-tcp && !tcp.reassembled_in && !tcp.analysis.retransmission && !tcp.analysis.spurious_retransmission"
if [ -n "$lost_streams" ]; then
  echo "tshark-check: note: the capture lost segments of TCP stream(s) $lost_streams; payload the dissector could not reassemble there is not judged" >&2
  undissected="$undissected && !(tcp.stream in {$lost_streams})"
fi
#    The same holds for the tail of a stream that the capture stops in the middle of: when a stream is
#    not seen closing (no FIN or RST) and its last frames hold a PDU that never completes in the
#    capture, the capture ended (or lost what followed) before that PDU did. Payload after the stream's
#    last dissected PDU there is noted, not judged; a stream that closes is judged to its end.
closed_streams=$(dissect -Y "$on_ports && (tcp.flags.fin == 1 || tcp.flags.reset == 1)" -T fields -e tcp.stream | sort -un | paste -sd, -)
last_pdu_frames=$(awk -F'\t' 'NF >= 5 { last[$5] = $1 } END { for (s in last) printf "%s:%s,", s, last[s] }' <<<"$pdus")
dissect -Y "$undissected" -T fields \
  -e frame.number -e tcp.stream -e tcp.len |
  awk -F'\t' -v closed="$closed_streams" -v lastpdu="$last_pdu_frames" -v problems="$problems" '
    BEGIN {
      n = split(closed, c, ","); for (i = 1; i <= n; i++) if (c[i] != "") is_closed[c[i]] = 1
      n = split(lastpdu, l, ","); for (i = 1; i <= n; i++) if (split(l[i], kv, ":") == 2) last[kv[1]] = kv[2] + 0
    }
    {
      if (!($2 in is_closed) && $1 + 0 > last[$2] + 0) cut[$2] += $3
      else printf "frame %s: %s bytes of TCP payload not dissected as NVMe/TCP\n", $1, $3 >> problems
    }
    END {
      for (s in cut)
        printf "tshark-check: note: TCP stream %s is not seen closing and its last %d bytes are a PDU the capture ends inside; not judged\n", s, cut[s] > "/dev/stderr"
    }'

total=${summary%% *}
if [ "$total" -eq 0 ]; then
  echo "nothing in the capture was dissected as NVMe/TCP on port(s) $2" >>"$problems"
fi

if [ -s "$problems" ]; then
  echo "tshark-check: FAIL $pcap (ports $2): $(wc -l <"$problems") complaint(s)" >&2
  head -n 50 "$problems" >&2
  echo "--- tshark -z expert,error ---" >&2
  dissect -q -z expert,error >&2 || true
  exit 1
fi
echo "tshark-check: OK $pcap (ports $2): $total NVMe/TCP PDUs dissected, no complaint (${summary#* })"
