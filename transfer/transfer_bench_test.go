package transfer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchTransferBytes is the size of the checkpoint the transfer
// benchmarks move.
const benchTransferBytes = 1 << 30

// BenchmarkTransfer moves the same 1 GiB checkpoint (random bytes) over
// a veth link between two network namespaces into an empty store, with
// each transport. Both stores are on tmpfs (/dev/shm) when it has room,
// so that the disk and the page cache's reclaim do not blur the
// comparison of transports; the receiver still hashes every chunk. MB/s
// is the whole send, sealing included; wire-MB/s is the shipping of the
// chunks alone, from NEED until the receiver has read them all.
func BenchmarkTransfer(b *testing.B) {
	needNetns(b, false)
	p := newTestPKI(b)
	ns := newNSPair(b)
	src := benchStore(b)
	ck := sealRandom(b, src, "bench", 1, map[string]int{"pages-1.img": benchTransferBytes}, 1)
	for _, tc := range []struct {
		name           string
		network        string
		conns, streams int
	}{
		{"quic/1conn-1stream", NetworkQUIC, 1, 1},
		{"quic/1conn-4streams", NetworkQUIC, 1, 4},
		{"quic/2conns-4streams", NetworkQUIC, 2, 4},
		{"quic/4conns-4streams", NetworkQUIC, 4, 4},
		{"tls-tcp/1stream", NetworkTCP, 1, 1},
		{"tls-tcp/4streams", NetworkTCP, 1, 4},
		{"plain-tcp/1stream", NetworkPlain, 1, 1},
		{"plain-tcp/4streams", NetworkPlain, 1, 4},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dst := benchStore(b)
			srv := startServer(b, p, dst, func(c *ServerConfig) {
				c.Network = tc.network
				c.Logger = testQuietLogger()
				if tc.network == NetworkQUIC {
					c.PacketConn = ns.serverPacketConn(b)
				} else {
					c.Listener = ns.serverListener(b)
				}
				if tc.network == NetworkPlain {
					c.TLS = nil
				}
			})
			cl := newTestClient(b, p, nil, func(c *ClientConfig) {
				c.Network, c.Conns, c.Streams = tc.network, tc.conns, tc.streams
				c.Logger = testQuietLogger()
				c.ListenPacket, c.DialTCP = ns.clientPacketConn, ns.dialTCP
				if tc.network == NetworkPlain {
					c.TLS = nil
				}
			})
			b.SetBytes(benchTransferBytes)
			var wire time.Duration
			for i := 0; i < b.N; i++ {
				stats, err := cl.Send(background(b), srv.Addr().String(), "receiver", ck)
				if err != nil {
					b.Fatal(err)
				}
				if stats.ChunksSent != stats.Chunks {
					b.Fatalf("sent %d of %d chunks", stats.ChunksSent, stats.Chunks)
				}
				wire += stats.DataTook
				b.StopTimer()
				must(b, dst.Remove("bench", 1))
				b.StartTimer()
			}
			b.ReportMetric(float64(benchTransferBytes)*float64(b.N)/1e6/wire.Seconds(), "wire-MB/s")
		})
	}
}

// BenchmarkFrameDecode reads and decodes one CHUNK frame.
func BenchmarkFrameDecode(b *testing.B) {
	var frame bytes.Buffer
	must(b, WriteFrame(&frame, FrameChunk, append(appendChunkHeader(nil, 7), make([]byte, DefaultChunkSize)...)))
	in := frame.Bytes()
	buf := make([]byte, FrameHeaderSize+4+MaxChunkData)
	r := bytes.NewReader(in)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r.Reset(in)
		_, p, err := ReadFrame(r, buf)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := decodeChunk(p); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStore opens a store on tmpfs if /dev/shm has 3 GiB free, else in
// a temporary directory on disk.
func benchStore(b *testing.B) *Store {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) != nil || st.Bavail*uint64(st.Bsize) < 3<<30 {
		return openStore(b, 0)
	}
	dir, err := os.MkdirTemp("/dev/shm", "lifeboat-bench-")
	must(b, err)
	b.Cleanup(func() { os.RemoveAll(dir) })
	s, err := OpenStore(filepath.Join(dir, "checkpoints"), 0)
	must(b, err)
	return s
}
