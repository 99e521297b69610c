"""Records counted in a pcap that is still growing, fed in arbitrary pieces."""

import io

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Ether
from scapy.utils import PcapWriter

from vxcap.core.pcap_records import RecordCount


def pcap(n, nano=False):
    buf = io.BytesIO()
    writer = PcapWriter(buf, nano=nano, sync=True)
    for i in range(n):
        writer.write(Ether() / IP(dst="10.0.0.1") / ICMP(seq=i) / (b"x" * (i * 37 % 300)))
    writer.flush()
    return buf.getvalue()


def test_whole_file_counts_every_record():
    for nano in (False, True):
        count = RecordCount()
        count.feed(pcap(7, nano), 0)
        assert count.records == 7


def test_fed_in_pieces_counts_only_complete_records_and_then_the_rest():
    data = pcap(9)
    count = RecordCount()
    fed = 0
    for cut in (10, 30, 61, 200, 201, 555, len(data) - 3, len(data)):
        count.feed(data[count.offset:cut], count.offset) if count.endian is not None else count.feed(data[:cut], 0)
        fed = cut
    assert fed == len(data) and count.records == 9 and count.offset == len(data)


def test_a_partial_record_is_not_counted():
    data = pcap(3)
    count = RecordCount()
    count.feed(data[:-1], 0)
    assert count.records == 2


def test_not_a_pcap_is_never_counted():
    count = RecordCount()
    count.feed(b"\x0a\x0d\x0d\x0a" + b"\0" * 100, 0)
    assert count.records == 0 and not count.readable
