package sse_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tokenmeter/tokenmeter/internal/sse"
)

var update = flag.Bool("update", false, "rewrite testdata/*.want.json from the current output")

func TestFrameEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"Empty", "", -1},
		{"NoBlankLine", "data: x\n", -1},
		{"NoLineEnd", "data: x", -1},
		{"LF", "data: x\n\n", 9},
		{"LFThenMore", "data: x\n\ndata: y\n\n", 9},
		{"CRLF", "data: x\r\n\r\n", 11},
		{"CR", "data: x\r\r", -1}, // trailing lone CR: may be the first half of CRLF
		{"CRThenByte", "data: x\r\rd", 9},
		{"CRThenLF", "data: x\r\r\n", 10},
		{"MixedCRLF", "data: x\r\n\n", 10},
		{"MixedLFCR", "data: x\n\r\n", 10},
		{"LeadingBlankLF", "\nrest", 1},
		{"LeadingBlankCRLF", "\r\nrest", 2},
		{"LeadingLoneCR", "\r", -1},
		{"TwoLines", "event: e\ndata: x\n\n", 18},
		{"CommentOnly", ": keep-alive\n\n", 14},
		{"CRInsideLineIsEnd", "a\rb\n\n", 5},
		{"HalfCRLFThenBlank", "a\r\n\r", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sse.FrameEnd([]byte(tt.in)); got != tt.want {
				t.Errorf("FrameEnd(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want sse.Event
	}{
		{"Empty", "", sse.Event{}},
		{"BlankLine", "\n", sse.Event{}},
		{"DataSpace", "data: x\n\n", sse.Event{Data: []byte("x")}},
		{"DataNoSpace", "data:x\n\n", sse.Event{Data: []byte("x")}},
		{"OnlyOneSpaceStripped", "data:  x\n\n", sse.Event{Data: []byte(" x")}},
		{"EventAndData", "event: ping\ndata: {}\n\n", sse.Event{Name: "ping", Data: []byte("{}")}},
		{"UnknownName", "event: something_new\ndata: {}\n\n", sse.Event{Name: "something_new", Data: []byte("{}")}},
		{"MultiData", "data: a\ndata: b\ndata:\ndata: c\n\n", sse.Event{Data: []byte("a\nb\n\nc")}},
		{"DataWithoutColon", "data\n\n", sse.Event{Data: []byte{}}},
		{"EmptyDataThenData", "data:\ndata: x\n\n", sse.Event{Data: []byte("\nx")}},
		{"Comment", ": hello\ndata: x\n\n", sse.Event{Data: []byte("x")}},
		{"CommentOnly", ": hello\n\n", sse.Event{}},
		{"UnknownFieldsIgnored", "retry: 10\nfoo: bar\nDATA: no\ndata: x\n\n", sse.Event{Data: []byte("x")}},
		{"LastEventWins", "event: a\nevent: b\ndata: x\n\n", sse.Event{Name: "b", Data: []byte("x")}},
		{"EmptyEventName", "event:\ndata: x\n\n", sse.Event{Data: []byte("x")}},
		{"ID", "id: 42\ndata: x\n\n", sse.Event{ID: "42", Data: []byte("x")}},
		{"IDWithNULIgnored", "id: 4\x002\ndata: x\n\n", sse.Event{Data: []byte("x")}},
		{"CRLF", "event: e\r\ndata: x\r\n\r\n", sse.Event{Name: "e", Data: []byte("x")}},
		{"CR", "event: e\rdata: x\r\r", sse.Event{Name: "e", Data: []byte("x")}},
		{"StopsAtBlankLine", "data: x\n\ndata: y\n\n", sse.Event{Data: []byte("x")}},
		{"NoTrailingLineEnd", "data: [DONE]", sse.Event{Data: []byte("[DONE]")}},
		{"ColonInValue", "data: {\"a\":\"b:c\"}\n\n", sse.Event{Data: []byte(`{"a":"b:c"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sse.Parse([]byte(tt.in))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestParseAliases pins the documented aliasing: a single data line is a
// sub-slice of the frame, several are joined into a fresh buffer.
func TestParseAliases(t *testing.T) {
	frame := []byte("data: abc\n\n")
	ev := sse.Parse(frame)
	frame[7] = 'X'
	if got, want := string(ev.Data), "aXc"; got != want {
		t.Errorf("Parse(single data line).Data after changing the frame = %q, want %q (aliased)", got, want)
	}
	frame = []byte("data: a\ndata: b\n\n")
	ev = sse.Parse(frame)
	frame[6] = 'X'
	if got, want := string(ev.Data), "a\nb"; got != want {
		t.Errorf("Parse(two data lines).Data after changing the frame = %q, want %q (copied)", got, want)
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name, event string
		data        string
		want        string
	}{
		{"NoName", "", `{"a":1}`, "data: {\"a\":1}\n\n"},
		{"Name", "message_stop", `{"type":"message_stop"}`, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		{"Multiline", "e", "a\nb", "event: e\ndata: a\ndata: b\n\n"},
		{"CRLFData", "", "a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n"},
		{"TrailingNewline", "", "a\n", "data: a\ndata:\n\n"},
		{"EmptyData", "ping", "", "event: ping\ndata:\n\n"},
		{"BlankLineInData", "", "a\n\nb", "data: a\ndata:\ndata: b\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := sse.NewWriter(&buf)
			if err := w.WriteEvent(tt.event, []byte(tt.data)); err != nil {
				t.Fatalf("WriteEvent(%q, %q) error: %v", tt.event, tt.data, err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("WriteEvent(%q, %q) wrote %q, want %q", tt.event, tt.data, got, tt.want)
			}
			// What the writer writes is one frame that parses back.
			b := buf.Bytes()
			if n := sse.FrameEnd(b); n != len(b) {
				t.Errorf("FrameEnd(%q) = %d, want %d", b, n, len(b))
			}
			ev := sse.Parse(b)
			wantData := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(tt.data)
			if ev.Name != tt.event || string(ev.Data) != wantData {
				t.Errorf("Parse(%q) = {%q, %q}, want {%q, %q}", b, ev.Name, ev.Data, tt.event, wantData)
			}
		})
	}
}

func TestWriterBadName(t *testing.T) {
	var buf bytes.Buffer
	w := sse.NewWriter(&buf)
	for _, name := range []string{"a\nb", "a\r", "\r\n"} {
		if err := w.WriteEvent(name, []byte("x")); !errors.Is(err, sse.ErrBadName) {
			t.Errorf("WriteEvent(%q, ...) error = %v, want ErrBadName", name, err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("WriteEvent with bad names wrote %q, want nothing", buf.String())
	}
}

type flushRecorder struct {
	bytes.Buffer
	flushes int
}

func (f *flushRecorder) Flush() { f.flushes++ }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterFlushAndError(t *testing.T) {
	var f flushRecorder
	w := sse.NewWriter(&f)
	for i := 0; i < 3; i++ {
		if err := w.WriteEvent("e", []byte("x")); err != nil {
			t.Fatalf("WriteEvent error: %v", err)
		}
	}
	if f.flushes != 3 {
		t.Errorf("after 3 WriteEvent calls, Flush called %d times, want 3", f.flushes)
	}
	if err := sse.NewWriter(failingWriter{}).WriteEvent("e", nil); err == nil {
		t.Errorf("WriteEvent on a failing writer returned nil error, want the write error")
	}
}

// frameAll splits b into frames with FrameEnd and returns them and the rest.
func frameAll(b []byte) (frames [][]byte, rest []byte) {
	for {
		n := sse.FrameEnd(b)
		if n < 0 {
			return frames, b
		}
		frames = append(frames, b[:n])
		b = b[n:]
	}
}

type goldenEvent struct {
	Len  int    `json:"len"`
	Name string `json:"name,omitempty"`
	Data string `json:"data"`
	ID   string `json:"id,omitempty"`
}

type golden struct {
	Events []goldenEvent `json:"events"`
	Rest   string        `json:"rest"`
}

// TestGolden frames and parses each recorded stream in testdata and compares
// the events with the .want.json beside it. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.sse files (err %v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			frames, rest := frameAll(in)
			got := golden{Events: []goldenEvent{}, Rest: string(rest)}
			for _, f := range frames {
				ev := sse.Parse(f)
				got.Events = append(got.Events, goldenEvent{Len: len(f), Name: ev.Name, Data: string(ev.Data), ID: ev.ID})
			}
			wantFile := strings.TrimSuffix(file, ".sse") + ".want.json"
			if *update {
				b, err := json.MarshalIndent(got, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(wantFile, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			var want golden
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("%s: %v", wantFile, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events of %s mismatch (-want +got):\n%s", file, diff)
			}
			checkPieces(t, in)
		})
	}
}

// checkPieces checks that reading b in pieces of every size finds the same
// frames as reading it whole, the way the gateway sees a stream.
func checkPieces(t *testing.T, b []byte) {
	t.Helper()
	whole, wholeRest := frameAll(b)
	for size := 1; size <= 7; size++ {
		var got [][]byte
		var buf []byte
		for off := 0; off < len(b); off += size {
			buf = append(buf, b[off:min(off+size, len(b))]...)
			for {
				n := sse.FrameEnd(buf)
				if n < 0 {
					break
				}
				got = append(got, bytes.Clone(buf[:n]))
				buf = buf[n:]
			}
		}
		if diff := cmp.Diff(whole, got); diff != "" || !bytes.Equal(buf, wholeRest) {
			t.Errorf("reading %q in pieces of %d: frames mismatch (-whole +pieces):\n%s\nrest %q, want %q", b, size, diff, buf, wholeRest)
		}
	}
}

func FuzzFrame(f *testing.F) {
	for _, s := range []string{
		"",
		"data: x\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
		"data: a\r\n\r\ndata: b\r\r\n",
		"data: a\r\rdata: b\r",
		": c\n\n\n\n\r\r\n\r",
		"id: 1\x00\ndata\ndata:\n\n",
		"data: [DONE]",
	} {
		f.Add([]byte(s))
	}
	if files, _ := filepath.Glob("testdata/*.sse"); len(files) > 0 {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, rest := frameAll(b)
		total := 0
		for _, fr := range frames {
			if len(fr) == 0 {
				t.Fatalf("FrameEnd returned an empty frame for %q", b)
			}
			total += len(fr)
			ev := sse.Parse(fr)
			// The frame's end is its first blank line, so parsing stops there
			// and a frame never yields data with the frame's own bytes
			// beyond it.
			if len(ev.Data) > len(fr) {
				t.Fatalf("Parse(%q).Data has %d bytes, more than the frame", fr, len(ev.Data))
			}
		}
		if total+len(rest) != len(b) {
			t.Fatalf("frames and rest of %q cover %d bytes, want %d", b, total+len(rest), len(b))
		}
		_ = sse.Parse(rest)

		// Every prefix frames to -1 or to the same first frame.
		first := sse.FrameEnd(b)
		if first != -1 && (first <= 0 || first > len(b)) {
			t.Fatalf("FrameEnd(%q) = %d, want -1 or in (0, %d]", b, first, len(b))
		}
		for k := 0; k <= len(b) && k < 64; k++ {
			if n := sse.FrameEnd(b[:k]); n != -1 && n != first {
				t.Fatalf("FrameEnd(%q) = %d but FrameEnd of its prefix %q = %d", b, first, b[:k], n)
			}
		}

		// Re-framing the concatenated frames finds the same frames. The
		// trailing "x" stands for the byte that followed the last frame: a
		// frame may end in a lone "\r", complete only once the next byte
		// shows it is not "\r\n".
		again, againRest := frameAll(append(bytes.Join(frames, nil), 'x'))
		if string(againRest) != "x" || len(again) != len(frames) {
			t.Fatalf("re-framing the %d frames of %q gave %d frames and rest %q", len(frames), b, len(again), againRest)
		}
		for i := range frames {
			if !bytes.Equal(again[i], frames[i]) {
				t.Fatalf("re-framing frame %d: got %q, want %q", i, again[i], frames[i])
			}
		}

		// A frame written by Writer parses back to its name and data.
		ev := sse.Parse(b)
		if !strings.ContainsAny(ev.Name, "\r\n") {
			var buf bytes.Buffer
			if err := sse.NewWriter(&buf).WriteEvent(ev.Name, ev.Data); err != nil {
				t.Fatalf("WriteEvent(%q, %q): %v", ev.Name, ev.Data, err)
			}
			w := buf.Bytes()
			if n := sse.FrameEnd(w); n != len(w) {
				t.Fatalf("FrameEnd(WriteEvent output %q) = %d, want %d", w, n, len(w))
			}
			back := sse.Parse(w)
			if back.Name != ev.Name || !bytes.Equal(back.Data, ev.Data) && !(len(ev.Data) == 0 && len(back.Data) == 0) {
				t.Fatalf("Parse(WriteEvent(%q, %q)) = {%q, %q}", ev.Name, ev.Data, back.Name, back.Data)
			}
		}
	})
}

// anthropicStream returns a recorded-looking Anthropic stream of about 300
// frames: the fixture's frames with its text delta repeated.
func anthropicStream(tb testing.TB) []byte {
	tb.Helper()
	in, err := os.ReadFile("testdata/anthropic_text.sse")
	if err != nil {
		tb.Fatal(err)
	}
	delta := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" a token or two\"}}\n\n"
	i := bytes.Index(in, []byte("event: content_block_stop"))
	var b []byte
	b = append(b, in[:i]...)
	b = append(b, strings.Repeat(delta, 300)...)
	b = append(b, in[i:]...)
	return b
}

func BenchmarkFrameParse(b *testing.B) {
	stream := anthropicStream(b)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		buf := stream
		for {
			n := sse.FrameEnd(buf)
			if n < 0 {
				break
			}
			ev := sse.Parse(buf[:n])
			if len(ev.Data) == 0 {
				b.Fatal("frame without data")
			}
			buf = buf[n:]
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" a token or two"}}`)
	w := sse.NewWriter(discard{})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteEvent("content_block_delta", data); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
